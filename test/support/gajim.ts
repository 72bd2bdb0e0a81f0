/**
 * Submissions as Gajim 1.7.3 (Debian bookworm's) makes them, for replays.
 *
 * Gajim's ad-hoc window sends back the form it was given, whole (title, instructions, fixed fields,
 * every option), with type='submit' (`DataFormWidget.get_submit_form`). Its list-multi widget
 * (`ListMutliTreeView`) keeps rows of (label, value, tooltip, ticked) where the tooltip is the
 * label, and on every tick sets the field's values to the ticked rows' tooltip column: the
 * option's *label*, not its value. nbxmpp gives a label-less option its value as label. The new
 * `<value/>` elements follow the `<option/>`s.
 */
import type { Element } from '../../src/xmpp/xml';
import { xml } from '../../src/xmpp/xml';

const NS_DATA = 'jabber:x:data';

function copy(el: Element): Element {
  return xml(el.name, { ...el.attrs }, ...el.children.map((c) => (typeof c === 'string' ? c : copy(c))));
}

/** `ticked`: for each list-multi field, the option values a person ticked (what Gajim then sends is their labels). */
export function gajim17Submit(form: Element, ticked: Record<string, readonly string[]>, text: Record<string, string> = {}): Element {
  const out = xml('x', { ...form.attrs, xmlns: NS_DATA, type: 'submit' });
  for (const child of form.children) {
    if (typeof child === 'string') continue;
    const name = child.attrs.var ?? '';
    if (child.name !== 'field' || !(name in ticked || name in text)) {
      out.append(copy(child));
      continue;
    }
    const field = xml('field', { ...child.attrs }, ...child.getChildren('option').map(copy), ...child.getChildren('desc').map(copy));
    if (name in text) {
      field.append(xml('value', {}, text[name]));
    } else {
      for (const value of ticked[name]) {
        const option = child.getChildren('option').find((o) => o.getChildText('value') === value);
        if (!option) throw new Error(`no option ${value} in ${name}`);
        field.append(xml('value', {}, option.attrs.label || value));
      }
    }
    out.append(field);
  }
  return out;
}
