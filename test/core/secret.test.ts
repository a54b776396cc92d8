import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format, inspect } from 'node:util';
import fc from 'fast-check';
import { Secret } from '../../src/core/secret.ts';

test('Secret: JSON, string conversion and util.inspect show it redacted, wherever it sits', () => {
  const secret = new Secret('hunter2');
  const settings = { host: 'example', token: secret, nested: [{ token: secret }] };
  assert.equal(JSON.stringify(settings), '{"host":"example","token":"[redacted]","nested":[{"token":"[redacted]"}]}');
  assert.equal(String(secret), '[redacted]');
  assert.equal([secret].join(''), '[redacted]', 'string conversion, as a template literal makes it');
  assert.equal(inspect(secret), 'Secret([redacted])');
  const printed = [
    inspect(settings, { depth: Infinity, showHidden: true }),
    format('%s %j %o %O', secret, settings, settings, settings),
    new Error(['bad token', secret].join(' ')).message,
  ];
  for (const text of printed) assert.ok(!text.includes('hunter2'), text);
});

test('Secret: reveal() gives the value back, and only it does', () => {
  const secret = new Secret('hunter2');
  assert.equal(secret.reveal(), 'hunter2');
  assert.deepEqual(Object.keys(secret), []);
  assert.deepEqual({ ...secret }, {});
  // A copy made to cross a thread keeps no private field: the value stays where it was made.
  assert.ok(!inspect(structuredClone({ secret }), { showHidden: true }).includes('hunter2'));
});

test('Secret: whatever the value, its printed forms are the same and reveal() is exact', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (value) => {
      const secret = new Secret(value);
      assert.equal(JSON.stringify(secret), '"[redacted]"');
      assert.equal(String(secret), '[redacted]');
      assert.equal(inspect({ secret }), '{ secret: Secret([redacted]) }');
      assert.equal(secret.reveal(), value);
    }),
  );
});
