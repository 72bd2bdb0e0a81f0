/**
 * XEP-0004 data forms: build them from plain descriptions, read submitted ones into a map.
 * References: https://xmpp.org/extensions/xep-0004.html §3.1 (instructions), §3.2 (fields and
 * options), §3.3 (field types)
 */
import { cleanText, trimSpace } from '../domain/text';
import { NS } from './ns';
import { xml, type Element } from './xml';

export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface FieldSpec {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  value?: string | boolean | readonly string[];
  options?: readonly { label?: string; value: string }[];
}

export interface FormSpec {
  type: 'form' | 'result';
  title?: string;
  /** one `<instructions/>` element per line (XEP-0004 §3.1) */
  instructions?: string | readonly string[];
  formType?: string;
  fields: readonly FieldSpec[];
}

function values(value: FieldSpec['value'], type: FieldType | undefined): string[] {
  if (value === undefined) return [];
  if (typeof value === 'boolean') return [value ? '1' : '0'];
  if (typeof value === 'string') return type === 'text-multi' ? value.split('\n') : [value];
  return [...value];
}

/** Runs of white space (line breaks included) as one space: the form an attribute value arrives in. */
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/**
 * The options as sent: each label on one line (XML attribute-value normalisation turns a line break
 * into a space at the client, which would then echo a label we never sent), and no two labels of
 * a field alike, so that a label a client submits in place of a value names one option. A label
 * that another option of the field also has gets its value appended.
 */
function sentOptions(options: readonly { label?: string; value: string }[]): { label?: string; value: string }[] {
  const labels = options.map((o) => (o.label === undefined ? undefined : oneLine(o.label)));
  const count = new Map<string, number>();
  for (const l of labels) if (l !== undefined) count.set(l, (count.get(l) ?? 0) + 1);
  return options.map((o, i) => {
    const label = labels[i];
    return { value: o.value, label: label !== undefined && count.get(label)! > 1 ? `${label} (${o.value})` : label };
  });
}

export function field(spec: FieldSpec): Element {
  return xml(
    'field',
    { var: spec.var, type: spec.type, label: spec.label },
    spec.desc ? xml('desc', {}, spec.desc) : null,
    spec.required ? xml('required') : null,
    ...values(spec.value, spec.type).map((v) => xml('value', {}, v)),
    ...sentOptions(spec.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', {}, o.value))),
  );
}

/**
 * XEP-0004 §3.1: instructions "SHOULD NOT contain newlines (the \n and \r characters) … however,
 * multiple instances of the <instructions/> element MAY be included."
 */
function instructions(text: FormSpec['instructions']): Element[] {
  if (text === undefined) return [];
  const lines = (typeof text === 'string' ? [text] : text).flatMap((t) => t.split(/\r\n|\r|\n/));
  return lines.filter((l) => l.trim() !== '').map((l) => xml('instructions', {}, l));
}

export function dataForm(spec: FormSpec): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: spec.type },
    spec.title ? xml('title', {}, spec.title) : null,
    ...instructions(spec.instructions),
    spec.formType ? field({ var: 'FORM_TYPE', type: 'hidden', value: spec.formType }) : null,
    ...spec.fields.map(field),
  );
}

/** The options of each list field of a form that was sent, by var: what a submission is read against. */
export type OfferedOptions = ReadonlyMap<string, readonly { label?: string; value: string }[]>;

/** The options of the list-single and list-multi fields of a form as it was sent. */
export function offeredOptions(form: Element | undefined): OfferedOptions {
  const offered = new Map<string, { label?: string; value: string }[]>();
  if (!form || !form.is('x', NS.dataForms)) return offered;
  for (const f of form.getChildren('field')) {
    const name = f.attrs.var;
    if (!name || (f.attrs.type !== 'list-multi' && f.attrs.type !== 'list-single')) continue;
    offered.set(
      name,
      f.getChildren('option').map((o) => ({ label: o.attrs.label, value: o.getChildText('value') ?? '' })),
    );
  }
  return offered;
}

/**
 * A submitted value of a list field as the option it names. XEP-0004 §3.3 wants the option's value,
 * but some clients submit what they showed: Gajim 1.7's list-multi widget sends each ticked
 * option's label. So a value that is no option's value and equals exactly one option's label, as
 * that form showed it, is read as that option. Anything else is left as it came, for the command to
 * check and refuse by name.
 */
function asOption(value: string, options: readonly { label?: string; value: string }[]): string {
  if (options.some((o) => o.value === value)) return value;
  const named = options.filter((o) => o.label === value);
  return named.length === 1 ? named[0].value : value;
}

/**
 * A submitted form: its type and the values of each field by var. Each value is read the way its
 * kind of text is handled (src/domain/text.ts), and a command says which kind it reads:
 * - `value` and `values`: identifiers and choices (usernames, addresses, JIDs, tokens, invite ids,
 *   option values), never cleaned (`value` drops only the white space around it): a character they
 *   may not hold makes them invalid, for their own validation to refuse by name;
 * - `text` and `texts`: free text (notes, reasons, messages), cleaned by the one rule;
 * - `secret`: a password, exactly as sent, which the rule refuses rather than changes.
 */
export class SubmittedForm {
  constructor(
    readonly type: string,
    readonly fields: ReadonlyMap<string, readonly string[]>,
  ) {}

  /** Reads `x`; with `offered` (the form this one answers), list values are read as its options. */
  static parse(x: Element | undefined, offered?: OfferedOptions): SubmittedForm | undefined {
    if (!x || !x.is('x', NS.dataForms)) return undefined;
    const fields = new Map<string, string[]>();
    for (const f of x.getChildren('field')) {
      const name = f.attrs.var;
      if (!name) continue;
      const submitted = f.getChildren('value').map((v) => v.text());
      const options = offered?.get(name);
      fields.set(name, options ? submitted.map((v) => asOption(v, options)) : submitted);
    }
    return new SubmittedForm(x.attrs.type ?? 'submit', fields);
  }

  has(name: string): boolean {
    return this.fields.has(name);
  }

  /** The single value of an identifier or choice field, as sent less the space around it; undefined when absent or empty. */
  value(name: string): string | undefined {
    const raw = this.fields.get(name)?.[0];
    const v = raw === undefined ? undefined : trimSpace(raw);
    return v === undefined || v === '' ? undefined : v;
  }

  /** All values of an identifier field (list-multi options, jid-multi, addresses), each exactly as sent. */
  values(name: string): readonly string[] {
    return this.fields.get(name) ?? [];
  }

  /** The single value of a free-text field, cleaned and trimmed; undefined when absent or empty. */
  text(name: string): string | undefined {
    const raw = this.fields.get(name)?.[0];
    const v = raw === undefined ? undefined : cleanText(raw).trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** All values of a free-text field (text-multi lines), each cleaned. */
  texts(name: string): readonly string[] {
    return (this.fields.get(name) ?? []).map(cleanText);
  }

  /** The first value of a field exactly as sent (a password); undefined when absent. */
  secret(name: string): string | undefined {
    return this.fields.get(name)?.[0];
  }

  /** XEP-0004 §3.3 boolean: "1" or "true" is true, "0" or "false" false; undefined when absent. */
  bool(name: string): boolean | undefined {
    const v = this.value(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    return undefined;
  }
}
