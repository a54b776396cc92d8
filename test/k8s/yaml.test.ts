import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse, parseAllDocuments } from 'yaml';
import { toYaml, toYamlDocuments, type YamlValue } from '../../src/k8s/yaml.ts';

/** Read back as kubectl reads it (YAML 1.1, sigs.k8s.io/yaml) and as YAML 1.2 does. */
function readBack(text: string): { v11: unknown; v12: unknown } {
  return { v11: parse(text, { version: '1.1' }) as unknown, v12: parse(text) as unknown };
}

test('toYaml: block maps and lists, lists at their key’s indentation, empty ones in flow style', () => {
  const text = toYaml({
    kind: 'Job',
    spec: { args: ['rr', '-c', 'host'], items: [{ name: 'a', ports: [{ port: 1 }] }, 'b'], empty: {}, none: [] },
    off: undefined,
  });
  assert.equal(
    text,
    [
      'kind: Job',
      'spec:',
      '  args:',
      '  - rr',
      '  - "-c"',
      '  - host',
      '  items:',
      '  - name: a',
      '    ports:',
      '    - port: 1',
      '  - b',
      '  empty: {}',
      '  none: []',
      '',
    ].join('\n'),
  );
});

test('toYaml: strings YAML 1.1 or 1.2 would read as something else are quoted; they read back as the same strings', () => {
  const tricky = [
    'on',
    'Off',
    'yes',
    'N',
    'y',
    'true',
    'NULL',
    '~',
    '',
    ' lead',
    'trail ',
    '0755',
    '1_000',
    '1:30',
    '5210',
    '1e3',
    '.5',
    '-1',
    '+1',
    '0x1F',
    '.inf',
    '.NaN',
    'a: b',
    'a #b',
    '#c',
    '- x',
    '[x]',
    '{x}',
    '*x',
    '&x',
    '!x',
    '|',
    '>',
    '%x',
    '@x',
    '`x',
    "'q'",
    '"q"',
    'two\nlines',
    'tab\there',
    '\u0000\u007f\u0085\u2028\ufeff',
    'é ü 中文 😀',
    '2026-11-30',
    '2026-11-30T19:02:03Z',
    '=',
    '<<',
    // A random hex test id: an exponent with no digits before it to some YAML 1.1 readers.
    'e64796',
    'E5',
    'e+7',
  ];
  const value = Object.fromEntries(tricky.map((text, index) => [`k${index}`, text]));
  const text = toYaml({ ...value, list: tricky, [tricky[0]!]: 'key that is a boolean word', '1': 'numeric key' });
  const { v11, v12 } = readBack(text);
  const expected = { ...value, list: tricky, on: 'key that is a boolean word', '1': 'numeric key' };
  assert.deepEqual(v11, expected);
  assert.deepEqual(v12, expected);
  // Words without special meaning stay plain: the manifests read like kubectl's own.
  assert.match(
    toYaml({ image: 'registry.example/socktune', label: 'app.kubernetes.io/name' }),
    /^image: registry\.example\/socktune\nlabel: app\.kubernetes\.io\/name\n$/,
  );
});

test('toYaml: any tree of maps, lists, strings, finite numbers, booleans and null reads back equal under YAML 1.1 and 1.2', () => {
  const leaf = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const { tree } = fc.letrec<{ tree: YamlValue }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(tie('tree'), { maxLength: 4 }),
      fc.dictionary(fc.string({ unit: 'binary' }), tie('tree'), { maxKeys: 4 }),
    ),
  }));
  fc.assert(
    fc.property(tree, (value) => {
      const { v11, v12 } = readBack(toYaml(value));
      // -0 is written as 0, as JSON writes it.
      const expected = JSON.parse(JSON.stringify(value)) as unknown;
      assert.deepEqual(v12, expected);
      assert.deepEqual(v11, expected);
    }),
    { numRuns: 400 },
  );
});

test('toYamlDocuments: comment lines, then each document after ---', () => {
  const text = toYamlDocuments([{ a: 1 }, { b: [true] }], ['first', '', 'third']);
  assert.equal(text, '# first\n#\n# third\n---\na: 1\n---\nb:\n- true\n');
  assert.deepEqual(
    parseAllDocuments(text).map((document) => document.toJS() as unknown),
    [{ a: 1 }, { b: [true] }],
  );
  assert.throws(() => toYaml({ n: Number.POSITIVE_INFINITY }), /not a finite number/);
});
