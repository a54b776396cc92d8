/**
 * Text from a peer or a file, safe to print on a terminal: C0 and C1 control characters and DEL
 * (which a terminal acts on: clear the screen, move the cursor, set the title) become \u escapes.
 */
export function printable(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += code < 0x20 || (code >= 0x7f && code <= 0x9f) ? `\\u${code.toString(16).padStart(4, '0')}` : char;
  }
  return out;
}
