/**
 * A small YAML emitter for the plain data the manifests are made of: maps, lists, strings, finite
 * numbers, booleans and null. kubectl reads YAML with sigs.k8s.io/yaml, which is YAML 1.1: `on`,
 * `yes`, `y`, `0755`, `1_000` and `1:30` are not strings there. So a string is written plain only
 * when it cannot be read as anything else under YAML 1.1 or 1.2; every other string is written
 * double-quoted with JSON's escapes, which YAML's double-quoted style shares.
 */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue | undefined };

/** Plain only: starts with a letter, `_` or `/`, then letters, digits, `_`, `.`, `/` and `-` (no `:`, `#`, space or quote). */
const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./-]*$/;
/**
 * Words YAML 1.1 or 1.2 reads as booleans or null; and an exponent alone (`e64796`, a random test
 * id), which some YAML 1.1 readers take for a float with no digits before it.
 */
const RESERVED = /^(?:y|n|yes|no|on|off|true|false|null|[eE][-+]?\d+)$/i;

function scalar(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`YAML: ${value} is not a finite number`);
    return String(value);
  }
  if (PLAIN.test(value) && !RESERVED.test(value)) return value;
  // JSON escapes the C0 controls and lone surrogates; YAML also wants DEL, the C1 controls and the BOM escaped.
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function isEmpty(value: YamlValue): boolean {
  return typeof value === 'object' && value !== null && (Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0);
}

/** The lines of `value` as a block; a map's entries whose value is undefined are left out. */
function lines(value: YamlValue): string[] {
  if (typeof value !== 'object' || value === null) return [scalar(value)];
  if (isEmpty(value)) return [Array.isArray(value) ? '[]' : '{}'];
  if (Array.isArray(value)) {
    return (value as readonly YamlValue[]).flatMap((item) => {
      const [first, ...rest] = lines(item);
      // A nested list starts on its own line; a map's first entry shares the dash's line.
      if (Array.isArray(item) && !isEmpty(item)) return ['-', ...[first!, ...rest].map((line) => `  ${line}`)];
      return [`- ${first!}`, ...rest.map((line) => `  ${line}`)];
    });
  }
  return Object.entries(value as { readonly [key: string]: YamlValue | undefined }).flatMap(([key, item]) => {
    if (item === undefined) return [];
    const name = scalar(key);
    if (typeof item !== 'object' || item === null || isEmpty(item)) return [`${name}: ${lines(item)[0]!}`];
    // A list under a key is written at the key's indentation, as kubectl writes it.
    const nested = lines(item).map((line) => (Array.isArray(item) ? line : `  ${line}`));
    return [`${name}:`, ...nested];
  });
}

/** One YAML document for `value`, ending with a newline. */
export function toYaml(value: YamlValue): string {
  return `${lines(value).join('\n')}\n`;
}

/** Several documents separated by `---`, each optionally led by comment lines. */
export function toYamlDocuments(documents: readonly YamlValue[], comments: readonly string[] = []): string {
  const header = comments.map((comment) => (comment === '' ? '#' : `# ${comment}`)).join('\n');
  return (header === '' ? '' : `${header}\n`) + documents.map((document) => `---\n${toYaml(document)}`).join('');
}
