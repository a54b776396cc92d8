import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clientKey, DEFAULT_IPV6_PREFIX, plainAddress } from '../../src/core/client-key.ts';

test('clientKey: an IPv4 address is its own key; a Unix peer (no address) is ""', () => {
  assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
  assert.equal(clientKey('203.0.113.7', 0), '203.0.113.7', 'the IPv6 prefix does not touch IPv4');
  assert.equal(clientKey(undefined), '');
  assert.equal(clientKey(''), '');
});

test('clientKey: an IPv4-mapped IPv6 address counts as the IPv4 address it carries', () => {
  assert.equal(plainAddress('::ffff:198.51.100.4'), '198.51.100.4');
  assert.equal(plainAddress('::FFFF:198.51.100.4'), '198.51.100.4');
  assert.equal(clientKey('::ffff:198.51.100.4'), clientKey('198.51.100.4'));
  assert.notEqual(clientKey('::ffff:198.51.100.4'), clientKey('::ffff:198.51.100.5'));
  // Only the mapped form is unwrapped: other IPv6 addresses, and a NAT64 one, stay IPv6.
  assert.equal(plainAddress('2001:db8::1'), '2001:db8::1');
  assert.equal(plainAddress('64:ff9b::198.51.100.4'), '64:ff9b::198.51.100.4');
  assert.equal(clientKey('64:ff9b::198.51.100.4', 128), '64:ff9b:0:0:0:0:c633:6404');
});

test('clientKey: IPv6 is keyed by its /64 by default, so one host cannot take a fresh key per connection', () => {
  assert.equal(DEFAULT_IPV6_PREFIX, 64);
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('2001:db8:abcd:12ff::1', 56), '2001:db8:abcd:1200::/56');
  assert.equal(clientKey('2001:db8:abcd:12ff::1', 48), '2001:db8:abcd::/48');
  assert.equal(clientKey('2001:db8::1', 0), '::/0');
  assert.equal(clientKey('2001:db8::1', 128), '2001:db8:0:0:0:0:0:1');
  assert.notEqual(clientKey('2001:db8::1', 128), clientKey('2001:db8::2', 128));
});

const hex = (groups: number[]): string => groups.map((group) => group.toString(16)).join(':');

/** Eight 16-bit groups written out in full, compressed at the longest zero run, or in upper case with leading zeros. */
function spellings(groups: number[]): string[] {
  let best = { at: -1, length: 0 };
  for (let at = 0; at < 8; at++) {
    let length = 0;
    while (at + length < 8 && groups[at + length] === 0) length++;
    if (length > best.length) best = { at, length };
  }
  const compressed = best.length < 2 ? hex(groups) : `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.length))}`;
  const padded = groups.map((group) => group.toString(16).padStart(4, '0').toUpperCase()).join(':');
  return [hex(groups), compressed, padded];
}

const bitsOf = (groups: number[]): bigint => groups.reduce((bits, group) => (bits << 16n) | BigInt(group), 0n);
const samePrefix = (a: number[], b: number[], prefix: number): boolean =>
  bitsOf(a) >> BigInt(128 - prefix) === bitsOf(b) >> BigInt(128 - prefix);

test('clientKey: two IPv6 addresses share a key exactly when their first `prefix` bits agree, however they are written', () => {
  // Mostly zero groups, so that compressed spellings ("::") come up often.
  const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  const address = fc.array(group, { minLength: 8, maxLength: 8 });
  fc.assert(
    fc.property(address, fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: 128 }), (groups, flipBit, prefix) => {
      const keys = spellings(groups).map((spelling) => clientKey(spelling, prefix));
      assert.ok(
        keys.every((key) => key === keys[0]),
        `${spellings(groups).join(' / ')}: ${keys.join(' / ')}`,
      );
      const other = [...groups];
      other[flipBit >> 4]! ^= 0x8000 >> (flipBit & 15);
      assert.equal(clientKey(spellings(other)[1], prefix) === keys[0], samePrefix(groups, other, prefix));
    }),
    { numRuns: 500 },
  );
});
