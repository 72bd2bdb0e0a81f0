/**
 * Text for a person's terminal. Notes, names, reasons and addresses come from anyone (a decline
 * note from the web, a presence message): written as they are, ESC sequences would recolour the
 * screen, set the window title, plant OSC 8 links or move the cursor, and bidi overrides would make
 * a line read other than it is. Every such character is shown instead of obeyed:
 * - C0 controls (newline and tab included: one printed line is one line), DEL and C1 controls as
 *   `\xNN` (ESC is `\x1b`);
 * - line and paragraph separators and invisible format characters (bidi embeddings, overrides,
 *   isolates and marks, zero-width space, BOM, tag characters, …) as `<U+202E>`.
 * Zero-width joiner and non-joiner stay: scripts and emoji need them, and they move nothing.
 * Machine-readable output (`--json`) is never passed through this: it stays exact.
 */

// Cc: C0, DEL, C1; Cf: format characters; Zl, Zp: U+2028, U+2029.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const KEPT = new Set([0x200c, 0x200d]);

function shown(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (KEPT.has(cp)) return ch;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, '0')}`;
  return `<U+${cp.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/** `text` with every control and invisible format character rendered visibly (see above). */
export function visibleText(text: string): string {
  return text.replace(HIDDEN, shown);
}
