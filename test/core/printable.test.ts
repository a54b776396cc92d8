import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hasControlCharacter, printable } from '../../src/core/printable.ts';

const CONTROL_CODES = [...Array.from({ length: 0x20 }, (_, code) => code), ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i)];

test('printable: every C0, C1 and DEL character becomes its \\u escape', () => {
  for (const code of CONTROL_CODES) {
    const char = String.fromCharCode(code);
    assert.equal(hasControlCharacter(char), true, `U+${code.toString(16)}`);
    assert.equal(printable(char), `\\u${code.toString(16).padStart(4, '0')}`);
  }
  assert.equal(printable('\x1b[2J\x1b]0;owned\x07ok'), '\\u001b[2J\\u001b]0;owned\\u0007ok');
  assert.equal(printable('a\r\nb\tc\x9bd'), 'a\\u000d\\u000ab\\u0009c\\u009bd');
});

test('printable: text without control characters comes back unchanged', () => {
  for (const text of ['', 'plain ascii ~!', 'é ß 中文', '\u00a0 no-break space', '\u00a0\u00ff', 'emoji 😀', 'lone \ud800 surrogate'])
    assert.equal(printable(text), text);
  assert.equal(hasControlCharacter('\u00a0 just past C1'), false);
  assert.equal(hasControlCharacter(' just before DEL ~'), false);
});

test('printable: never leaves a control character, and leaves printable text alone', () => {
  const anyText = fc.string({ unit: 'binary', maxLength: 200 });
  fc.assert(fc.property(anyText, (text) => !hasControlCharacter(printable(text))));
  fc.assert(
    fc.property(anyText, (text) => {
      const clean = [...text].filter((char) => !CONTROL_CODES.includes(char.charCodeAt(0))).join('');
      return printable(clean) === clean && !hasControlCharacter(clean);
    }),
  );
  fc.assert(
    fc.property(anyText, fc.constantFrom(...CONTROL_CODES), anyText, (before, code, after) =>
      hasControlCharacter(`${before}${String.fromCharCode(code)}${after}`),
    ),
  );
});
