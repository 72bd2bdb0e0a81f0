/**
 * XEP-0004 forms as the component sends them and reads the answers: labels that a client can echo
 * back, instructions as lines, and list values read as the options of the form that was sent.
 */
import { dataForm, offeredOptions, SubmittedForm } from '../../src/xmpp/forms';
import { NS } from '../../src/xmpp/ns';
import { xml, type Element } from '../../src/xmpp/xml';

function sent(options: { label?: string; value: string }[]): Element {
  return dataForm({
    type: 'form',
    instructions: ['First line.', 'Second line.\nThird line.'],
    fields: [
      { var: 'pick', type: 'list-multi', label: 'Pick', options },
      { var: 'one', type: 'list-single', label: 'One', options },
      { var: 'note', type: 'text-single', label: 'Note' },
    ],
  });
}

function submitted(fields: Record<string, string[]>): Element {
  return xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...Object.entries(fields).map(([k, vs]) => xml('field', { var: k }, ...vs.map((v) => xml('value', {}, v)))));
}

const OPTIONS = [
  { value: 'k3x9q2m7ab', label: 'bob@example.org, by alice, 21 Nov 12:00' },
  { value: 'p8d2w5n1cz', label: 'link, by alice, 21 Nov 12:01' },
];

describe('reading a submission against the form that was sent', () => {
  it('reads a value that equals one option’s label as that option (Gajim 1.7 list-multi)', () => {
    const form = SubmittedForm.parse(submitted({ pick: ['link, by alice, 21 Nov 12:01'], one: ['bob@example.org, by alice, 21 Nov 12:00'] }), offeredOptions(sent(OPTIONS)))!;
    expect(form.values('pick')).toEqual(['p8d2w5n1cz']);
    expect(form.value('one')).toBe('k3x9q2m7ab');
  });

  it('keeps option values as they are, and a value another option has as its label stays that value', () => {
    const options = [
      { value: 'a', label: 'b' },
      { value: 'b', label: 'first' },
    ];
    const form = SubmittedForm.parse(submitted({ pick: ['b', 'first'] }), offeredOptions(sent(options)))!;
    expect(form.values('pick')).toEqual(['b', 'b']);
  });

  it('leaves what names no option as it came, for the command to refuse by name', () => {
    const form = SubmittedForm.parse(submitted({ pick: ['nobody', 'LINK, BY ALICE, 21 NOV 12:01'] }), offeredOptions(sent(OPTIONS)))!;
    expect(form.values('pick')).toEqual(['nobody', 'LINK, BY ALICE, 21 NOV 12:01']);
  });

  it('reads labels only for list fields, and only with the sent form', () => {
    const answer = submitted({ note: ['link, by alice, 21 Nov 12:01'], pick: ['link, by alice, 21 Nov 12:01'] });
    expect(SubmittedForm.parse(answer, offeredOptions(sent(OPTIONS)))!.text('note')).toBe('link, by alice, 21 Nov 12:01');
    expect(SubmittedForm.parse(answer)!.values('pick')).toEqual(['link, by alice, 21 Nov 12:01']);
  });
});

describe('sending options and instructions', () => {
  it('makes two options with one label distinct by their values, so that a label names one option', () => {
    const form = sent([
      { value: 'k3x9q2m7ab', label: 'link, by alice, 21 Nov 12:00' },
      { value: 'p8d2w5n1cz', label: 'link, by alice, 21 Nov 12:00' },
      { value: 'z1', label: 'other' },
    ]);
    const labels = form.getChildren('field')[0].getChildren('option').map((o) => o.attrs.label);
    expect(labels).toEqual(['link, by alice, 21 Nov 12:00 (k3x9q2m7ab)', 'link, by alice, 21 Nov 12:00 (p8d2w5n1cz)', 'other']);
    const read = SubmittedForm.parse(submitted({ pick: ['link, by alice, 21 Nov 12:00 (p8d2w5n1cz)'] }), offeredOptions(form))!;
    expect(read.values('pick')).toEqual(['p8d2w5n1cz']);
  });

  it('sends each label on one line, as the client will see it after attribute normalisation', () => {
    const form = sent([{ value: 'a', label: 'two\nlines\tand  spaces ' }]);
    expect(form.getChildren('field')[0].getChild('option')?.attrs.label).toBe('two lines and spaces');
    const read = SubmittedForm.parse(submitted({ pick: ['two lines and spaces'] }), offeredOptions(form))!;
    expect(read.values('pick')).toEqual(['a']);
  });

  it('writes instructions as one element per line (XEP-0004 §3.1)', () => {
    expect(sent(OPTIONS).getChildren('instructions').map((i) => i.text())).toEqual(['First line.', 'Second line.', 'Third line.']);
  });
});
