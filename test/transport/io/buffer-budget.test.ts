import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BufferBudget } from '../../../src/transport/io/buffer-budget.ts';
import { PEER_SLOTS, slotOf } from '../../../src/transport/io/peer-slots.ts';

const SEED = 424_242;

/** A budget whose slot seed is known, so the test can name clients that do not share a slot. */
function budgetOf(maxBytes: number): BufferBudget {
  const buffer = new SharedArrayBuffer((2 + PEER_SLOTS) * 4);
  new Int32Array(buffer)[1 + PEER_SLOTS] = SEED;
  return new BufferBudget(maxBytes, buffer);
}

/** `count` client keys that each have a slot of their own under SEED. */
function distinctClients(count: number): string[] {
  const keys: string[] = [];
  const slots = new Set<number>();
  for (let i = 0; keys.length < count; i++) {
    const key = `198.51.100.${i}`;
    if (slots.has(slotOf(key, SEED))) continue;
    slots.add(slotOf(key, SEED));
    keys.push(key);
  }
  return keys;
}

test('BufferBudget: reservations are granted up to maxBytes, and a release gives the bytes back', () => {
  const budget = budgetOf(1000);
  assert.equal(budget.tryReserve(600), true);
  assert.equal(budget.tryReserve(401), false);
  assert.equal(budget.usedBytes, 600, 'a refused reservation takes nothing');
  assert.equal(budget.tryReserve(400), true);
  assert.equal(budget.tryReserve(1), false);
  budget.release(400);
  assert.equal(budget.usedBytes, 600);
  assert.equal(budget.tryReserve(400), true);
});

test('BufferBudget: one client alone gets half the budget; a client within its quarter share may still fill the rest', () => {
  const budget = budgetOf(1000);
  const [greedy, second, third] = distinctClients(3).map((key) => budget.forClient(key));
  assert.equal(greedy!.tryReserve(250), true, 'its share');
  assert.equal(greedy!.tryReserve(250), true, 'past its share, while the budget is at most half full');
  assert.equal(greedy!.tryReserve(1), false, 'past its share with the budget half full');
  assert.equal(second!.tryReserve(250), true, 'another client within its share');
  assert.equal(second!.tryReserve(1), false, 'past its share, and the budget is more than half full');
  assert.equal(third!.tryReserve(250), true);
  assert.equal(budget.usedBytes, 1000);
  assert.equal(budget.forClient('198.51.100.250').tryReserve(1), false, 'nobody goes past the whole budget');
});

test('BufferBudget: a refused reservation does not count against the client', () => {
  const budget = budgetOf(1000);
  const [greedy, ...others] = distinctClients(4).map((key) => budget.forClient(key));
  assert.equal(greedy!.tryReserve(500), true);
  for (let i = 0; i < 10; i++) assert.equal(greedy!.tryReserve(100), false);
  greedy!.release(500);
  assert.equal(others[0]!.tryReserve(250), true);
  assert.equal(others[1]!.tryReserve(250), true);
  assert.equal(others[2]!.tryReserve(200), true);
  // Had the refusals been counted, it would be past its share, held to the half the budget is already past.
  assert.equal(greedy!.tryReserve(250), true);
});

test('BufferBudget: a Unix-socket client ("") draws on the whole budget, with no share', () => {
  const budget = budgetOf(1000);
  assert.equal(budget.forClient(''), budget);
  assert.equal(budget.forClient('').tryReserve(1000), true);
});

test('BufferBudget: a copy in another thread shares the totals and the per-client counts', () => {
  const budget = budgetOf(1000);
  const twin = BufferBudget.fromState(budget.state);
  const [key] = distinctClients(1);
  assert.equal(budget.forClient(key!).tryReserve(400), true);
  assert.equal(twin.usedBytes, 400);
  assert.equal(twin.forClient(key!).tryReserve(101), false, 'the twin knows this client already holds 400 of its 250 share');
  assert.equal(twin.forClient(key!).tryReserve(100), true);
  twin.forClient(key!).release(500);
  assert.equal(budget.usedBytes, 0);
});

test('BufferBudget: under any mix of clients, the total never passes the budget, a client past its share never passes half, and releases give everything back', () => {
  const maxBytes = 10_000;
  const keys = distinctClients(6);
  const step = fc.record({ client: fc.integer({ min: 0, max: 6 }), bytes: fc.integer({ min: 1, max: 4000 }), release: fc.boolean() });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
      const budget = budgetOf(maxBytes);
      // Client 6 is the whole budget (a Unix socket); the others are keyed.
      const views = [...keys.map((key) => budget.forClient(key)), budget.forClient('')];
      const held: number[][] = views.map(() => []);
      const total = (): number => held.flat().reduce((sum, bytes) => sum + bytes, 0);
      for (const { client, bytes, release } of steps) {
        if (release && held[client]!.length > 0) {
          views[client]!.release(held[client]!.pop()!);
        } else if (views[client]!.tryReserve(bytes)) {
          held[client]!.push(bytes);
          const mine = held[client]!.reduce((sum, taken) => sum + taken, 0);
          if (client < keys.length && mine > maxBytes / 4)
            assert.ok(total() <= maxBytes / 2, `client ${client} holds ${mine} of ${total()}`);
        }
        assert.equal(budget.usedBytes, total());
        assert.ok(budget.usedBytes <= maxBytes);
      }
      held.forEach((bytes, client) => bytes.forEach((taken) => views[client]!.release(taken)));
      assert.equal(budget.usedBytes, 0);
      // Every client's own count is back at zero too: with the budget past half full, each still gets its whole share.
      assert.ok(budget.tryReserve(maxBytes / 2));
      for (const view of views.slice(0, keys.length)) {
        assert.ok(view.tryReserve(maxBytes / 4));
        view.release(maxBytes / 4);
      }
    }),
    { numRuns: 300 },
  );
});
