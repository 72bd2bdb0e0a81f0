import { visibleText } from '../../src/terminal-text';

describe('visibleText', () => {
  test('C0 controls, newline and tab included, and DEL are shown as \\xNN', () => {
    expect(visibleText('a\x00b\x07c\x1b[2Jd\ne\tf\x7f')).toBe('a\\x00b\\x07c\\x1b[2Jd\\x0ae\\x09f\\x7f');
  });

  test('C1 controls (U+0080–U+009F, CSI among them) are shown as \\xNN', () => {
    expect(visibleText('\u0085 \u009b31m \u009d0;title\u009c')).toBe('\\x85 \\x9b31m \\x9d0;title\\x9c');
  });

  test('bidi overrides, isolates, marks, separators and invisible characters are shown as <U+XXXX>', () => {
    expect(visibleText('\u202eabc\u202c \u2066x\u2069 \u200f \u2028 \u2029 \u200b \ufeff \u{e0041}')).toBe(
      '<U+202E>abc<U+202C> <U+2066>x<U+2069> <U+200F> <U+2028> <U+2029> <U+200B> <U+FEFF> <U+E0041>',
    );
  });

  test('letters of every script, emoji sequences with joiners, and plain punctuation pass unchanged', () => {
    const text = 'Straße Ελληνικά עברית مرحبا 日本語 👩‍👩‍👧 می‌خواهم \\x1b 100%';
    expect(visibleText(text)).toBe(text);
  });

  test('rendering twice changes nothing more', () => {
    const once = visibleText('\x1b]8;;https://x/\x07\u202e');
    expect(visibleText(once)).toBe(once);
  });
});
