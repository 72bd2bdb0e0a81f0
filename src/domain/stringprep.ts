/**
 * The stringprep profiles XMPP servers compare JIDs with: nodeprep (localpart), nameprep (domain)
 * and resourceprep (resource), RFC 3920 appendices A-C over RFC 3454 and RFC 3491, as Prosody
 * (util.encodings, on libidn or ICU) and ejabberd (stringprep) apply them to addresses they route.
 *
 * Steps (RFC 3454 §3-6): map (B.1 to nothing; B.2 case folding for nodeprep and nameprep), NFKC,
 * refuse prohibited output, and refuse strings mixing right-to-left and left-to-right text.
 * Characters unassigned in Unicode 3.2 are allowed, as the servers allow them in stanzas they
 * route (RFC 3454 §7, "stored strings" are for registration, which is not ours to do): they pass
 * through the mapping unchanged. Normalisation uses the platform's NFKC, which for characters of
 * Unicode 3.2 is the same as 3.2's (Unicode's normalisation stability policy).
 *
 * So `straße` and `STRASSE` are both `strasse`, final sigma `ς` is `σ`, and full-width `ｂｏｂ`
 * is `bob`, exactly as the server that delivers to them sees them.
 *
 * References: https://www.rfc-editor.org/rfc/rfc3454 (tables, generated into
 * stringprep-tables.ts by scripts/gen-stringprep-tables.py), https://www.rfc-editor.org/rfc/rfc3920#appendix-A
 * (nodeprep), #appendix-B (resourceprep), https://www.rfc-editor.org/rfc/rfc3491 (nameprep).
 */
import { B_1, B_2, C_1_1, C_2_1, C_SHARED, D_1, D_2 } from './stringprep-tables';

function inRanges(ranges: readonly number[], cp: number): boolean {
  // binary search over pairs [first, last]
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[2 * mid]) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

const CASE_FOLD: ReadonlyMap<number, string> = (() => {
  const map = new Map<number, string>();
  for (let i = 0; i < B_2.length; ) {
    const cp = B_2[i++];
    const to: number[] = [];
    while (B_2[i] !== -1) to.push(B_2[i++]);
    i++;
    map.set(cp, String.fromCodePoint(...to));
  }
  return map;
})();

/** RFC 3920 appendix A.5: besides the tables, these ASCII characters may not stand in a localpart. */
const NODE_EXTRA = new Set([...'"&\'/:<>@'].map((c) => c.codePointAt(0)!));

interface Profile {
  caseFold: boolean;
  prohibited: (cp: number) => boolean;
  /** What `prohibited` refuses among printable ASCII. */
  asciiProhibited: RegExp;
}

const NODEPREP: Profile = {
  caseFold: true,
  prohibited: (cp) => inRanges(C_SHARED, cp) || inRanges(C_1_1, cp) || inRanges(C_2_1, cp) || NODE_EXTRA.has(cp),
  asciiProhibited: /[ "&'/:<>@]/,
};
const NAMEPREP: Profile = { caseFold: true, prohibited: (cp) => inRanges(C_SHARED, cp), asciiProhibited: /(?!)/ };
const RESOURCEPREP: Profile = { caseFold: false, prohibited: (cp) => inRanges(C_SHARED, cp) || inRanges(C_2_1, cp), asciiProhibited: /(?!)/ };

/** Printable ASCII: the tables map it by lower-casing at most, NFKC leaves it, and it is all L or neutral. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function prep(input: string, profile: Profile): string | undefined {
  // The common case, without the tables' walk (the same result: B.2 maps A-Z to a-z only).
  if (PRINTABLE_ASCII.test(input)) {
    if (profile.asciiProhibited.test(input)) return undefined;
    return profile.caseFold ? input.toLowerCase() : input;
  }
  let mapped = '';
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(B_1, cp)) continue;
    mapped += (profile.caseFold && CASE_FOLD.get(cp)) || ch;
  }
  const output = mapped.normalize('NFKC');
  let rtl = false;
  let ltr = false;
  for (const ch of output) {
    // a lone surrogate is a code point of C.5, so it is refused here
    const cp = ch.codePointAt(0)!;
    if (profile.prohibited(cp)) return undefined;
    if (inRanges(D_1, cp)) rtl = true;
    else if (inRanges(D_2, cp)) ltr = true;
  }
  // RFC 3454 §6: text with right-to-left characters has no left-to-right ones, and begins and
  // ends with a right-to-left character.
  if (rtl) {
    const chars = [...output];
    if (ltr || !inRanges(D_1, chars[0].codePointAt(0)!) || !inRanges(D_1, chars[chars.length - 1].codePointAt(0)!)) return undefined;
  }
  return output;
}

/** The localpart as the server compares it, or undefined when nodeprep refuses it. */
export function nodeprep(text: string): string | undefined {
  return prep(text, NODEPREP);
}

/** The domain as the server compares it, or undefined when nameprep refuses it. */
export function nameprep(text: string): string | undefined {
  return prep(text, NAMEPREP);
}

/** The resource as the server compares it, or undefined when resourceprep refuses it. */
export function resourceprep(text: string): string | undefined {
  return prep(text, RESOURCEPREP);
}
