/**
 * XEP-0004 data forms: build them from plain descriptions, read submitted ones into a map.
 * References: https://xmpp.org/extensions/xep-0004.html
 */
import { cleanText } from '../domain/text';
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
  instructions?: string;
  formType?: string;
  fields: readonly FieldSpec[];
}

function values(value: FieldSpec['value'], type: FieldType | undefined): string[] {
  if (value === undefined) return [];
  if (typeof value === 'boolean') return [value ? '1' : '0'];
  if (typeof value === 'string') return type === 'text-multi' ? value.split('\n') : [value];
  return [...value];
}

export function field(spec: FieldSpec): Element {
  return xml(
    'field',
    { var: spec.var, type: spec.type, label: spec.label },
    spec.desc ? xml('desc', {}, spec.desc) : null,
    spec.required ? xml('required') : null,
    ...values(spec.value, spec.type).map((v) => xml('value', {}, v)),
    ...(spec.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', {}, o.value))),
  );
}

export function dataForm(spec: FormSpec): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: spec.type },
    spec.title ? xml('title', {}, spec.title) : null,
    spec.instructions ? xml('instructions', {}, spec.instructions) : null,
    spec.formType ? field({ var: 'FORM_TYPE', type: 'hidden', value: spec.formType }) : null,
    ...spec.fields.map(field),
  );
}

/**
 * A submitted form: its type and the values of each field by var. Values are text from people:
 * `text` and `all` give them cleaned by the one rule (src/domain/text.ts); `secret` gives a value
 * exactly as sent, for passwords, which the rule refuses rather than changes.
 */
export class SubmittedForm {
  constructor(
    readonly type: string,
    readonly fields: ReadonlyMap<string, readonly string[]>,
  ) {}

  static parse(x: Element | undefined): SubmittedForm | undefined {
    if (!x || !x.is('x', NS.dataForms)) return undefined;
    const fields = new Map<string, string[]>();
    for (const f of x.getChildren('field')) {
      const name = f.attrs.var;
      if (!name) continue;
      fields.set(name, f.getChildren('value').map((v) => v.text()));
    }
    return new SubmittedForm(x.attrs.type ?? 'submit', fields);
  }

  has(name: string): boolean {
    return this.fields.has(name);
  }

  /** The single value of a field, cleaned and trimmed; undefined when absent or empty. */
  text(name: string): string | undefined {
    const raw = this.fields.get(name)?.[0];
    const v = raw === undefined ? undefined : cleanText(raw).trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** All values of a field (list-multi, jid-multi); text-multi lines; each cleaned. */
  all(name: string): readonly string[] {
    return (this.fields.get(name) ?? []).map(cleanText);
  }

  /** The first value of a field exactly as sent (a password); undefined when absent. */
  secret(name: string): string | undefined {
    return this.fields.get(name)?.[0];
  }

  /** XEP-0004 §3.3 boolean: "1" or "true" is true, "0" or "false" false; undefined when absent. */
  bool(name: string): boolean | undefined {
    const v = this.text(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    return undefined;
  }
}
