import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AUTH_BACKOFF_DEFAULTS, AuthBackoff, type AuthBackoffOptions } from '../../src/core/auth-backoff.ts';

/** A backoff on a clock the test moves by hand. */
function backoffAt(options: AuthBackoffOptions = {}): { backoff: AuthBackoff; advance: (ms: number) => void } {
  let now = 1_000_000;
  return { backoff: new AuthBackoff(options, () => now), advance: (ms) => (now += ms) };
}

test('AuthBackoff: the free failures are answered at once, the next wait twice as long each time, up to the cap', () => {
  const { backoff } = backoffAt();
  const waits = Array.from({ length: 9 }, () => backoff.failed('198.51.100.1'));
  assert.deepEqual(waits, [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000]);
  assert.equal(backoff.blockedFor('198.51.100.1'), 0, 'one short of blockAfter: still allowed to try');
});

test('AuthBackoff: failures count per client; another client starts with its free failures', () => {
  const { backoff } = backoffAt({ freeFailures: 1 });
  backoff.failed('a');
  assert.equal(backoff.failed('a'), 250);
  assert.equal(backoff.failed('b'), 0);
  assert.equal(backoff.failed('a'), 500);
  assert.equal(backoff.failed('b'), 250);
  assert.equal(backoff.size, 2);
});

test('AuthBackoff: past blockAfter the client is refused for blockMs, counted down on the clock, then may try again', () => {
  const { backoff, advance } = backoffAt({ blockAfter: 3, blockMs: 10_000 });
  backoff.failed('a');
  backoff.failed('a');
  assert.equal(backoff.blockedFor('a'), 0);
  backoff.failed('a');
  assert.equal(backoff.blockedFor('a'), 10_000);
  assert.equal(backoff.blockedFor('b'), 0, 'only the client that failed');
  advance(6_000);
  assert.equal(backoff.blockedFor('a'), 4_000);
  advance(3_999.5);
  assert.equal(backoff.blockedFor('a'), 1, 'half a millisecond left is still refused, never rounded down to 0');
  advance(0.5);
  assert.equal(backoff.blockedFor('a'), 0);
});

test('AuthBackoff: success forgets the client at once; a client quiet for forgetAfterMs starts afresh', () => {
  const { backoff, advance } = backoffAt({ freeFailures: 0, forgetAfterMs: 60_000 });
  backoff.failed('a');
  backoff.failed('a');
  backoff.succeeded('a');
  assert.equal(backoff.size, 0);
  assert.equal(backoff.failed('a'), 250, 'the first failure after a success');
  backoff.failed('a');
  advance(59_999);
  assert.equal(backoff.failed('a'), 1000, 'still remembered just before forgetAfterMs');
  advance(60_000);
  assert.equal(backoff.failed('a'), 250, 'forgotten after forgetAfterMs without a failure');
  advance(60_000);
  assert.equal(backoff.blockedFor('a'), 0);
  assert.equal(backoff.size, 0, 'looking at a stale client drops it');
});

test('AuthBackoff: a block longer than forgetAfterMs is kept until it ends', () => {
  const { backoff, advance } = backoffAt({ blockAfter: 1, blockMs: 120_000, forgetAfterMs: 60_000 });
  backoff.failed('a');
  advance(90_000);
  assert.equal(backoff.blockedFor('a'), 30_000);
  advance(30_000);
  assert.equal(backoff.blockedFor('a'), 0);
});

test('AuthBackoff: memory is bounded by maxClients, the client whose last failure is oldest forgotten first', () => {
  const { backoff } = backoffAt({ freeFailures: 0, maxClients: 3 });
  backoff.failed('a');
  backoff.failed('b');
  backoff.failed('c');
  backoff.failed('a');
  backoff.failed('d');
  assert.equal(backoff.size, 3);
  assert.equal(backoff.failed('b'), 250, 'b, the oldest, was forgotten: its count starts over');
  assert.equal(backoff.failed('a'), 1000, 'a failed again before d came, so it was kept');
});

test('AuthBackoff: the defaults are the documented ones and cannot be changed', () => {
  assert.deepEqual(
    { ...AUTH_BACKOFF_DEFAULTS },
    { freeFailures: 3, baseDelayMs: 250, maxDelayMs: 4000, blockAfter: 10, blockMs: 60_000, forgetAfterMs: 60_000, maxClients: 10_000 },
  );
  assert.ok(Object.isFrozen(AUTH_BACKOFF_DEFAULTS));
  assert.equal(new AuthBackoff({ maxDelayMs: 100 }).options.baseDelayMs, 250, 'options override one default at a time');
});

test('AuthBackoff: under any mix of clients, failures and successes, it remembers exactly the latest maxClients failing clients', () => {
  const step = fc.record({ client: fc.integer({ min: 0, max: 30 }), ok: fc.boolean(), ms: fc.integer({ min: 0, max: 5_000 }) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 10 }), (steps, maxClients) => {
      const { backoff, advance } = backoffAt({ maxClients, forgetAfterMs: 1e12, blockMs: 1e12 });
      // The clients remembered, least recently failed first, with their last wait.
      let remembered: { client: number; wait: number }[] = [];
      for (const { client, ok, ms } of steps) {
        advance(ms);
        const before = remembered.find((entry) => entry.client === client);
        remembered = remembered.filter((entry) => entry.client !== client);
        if (ok) {
          backoff.succeeded(String(client));
        } else {
          const wait = backoff.failed(String(client));
          assert.ok(wait <= backoff.options.maxDelayMs);
          if (before === undefined) assert.equal(wait, 0, 'a client not remembered starts with its free failures');
          else assert.ok(wait >= before.wait, 'a remembered client never waits less than last time');
          remembered.push({ client, wait });
          if (remembered.length > maxClients) remembered.shift();
        }
        assert.equal(backoff.size, remembered.length);
      }
    }),
  );
});
