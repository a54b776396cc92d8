import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { CONTROL_PROTOCOL_VERSION } from '../../../../src/bench/control/control-protocol.ts';
import { ControlChannel } from '../../../../src/bench/control/control-channel.ts';
import { withServer } from '../../../../testkit/control-messages.ts';

async function member(port: number, group: string, clients: number): Promise<ControlChannel> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const channel = new ControlChannel(socket);
  channel.send({ type: 'barrier', protocol: CONTROL_PROTOCOL_VERSION, group, clients, name: 'test' });
  return channel;
}

const next = (channel: ControlChannel): Promise<unknown> => channel.next(5000, 'a message');

test('a barrier client that leaves before the release leaves its group: the group waits for a newcomer instead', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    const join = async (present: number): Promise<ControlChannel> => {
      const channel = await member(port, 'g', 3);
      assert.deepEqual(await next(channel), { type: 'joined', present, clients: 3 });
      channel.send({ type: 'wait' });
      return channel;
    };
    const first = await join(1);
    assert.deepEqual(await next(first), { type: 'waiting', present: 1 });
    const leaver = await join(2);
    assert.deepEqual(await next(first), { type: 'waiting', present: 2 });
    leaver.socket.destroy();
    await new Promise((resolve) => leaver.socket.once('close', resolve));
    const third = await member(port, 'g', 3);
    third.send({ type: 'clock', t: 1 });
    assert.deepEqual(await next(third), { type: 'joined', present: 2, clients: 3 });
    const clock = (await next(third)) as { t: number; serverMs: number };
    assert.equal(clock.t, 1);
    assert.ok(Math.abs(clock.serverMs - Date.now()) < 1000);
    third.send({ type: 'wait' });
    // Two of three again, not three: the leaver no longer counts.
    assert.deepEqual(await next(first), { type: 'waiting', present: 2 });
    assert.deepEqual(await next(third), { type: 'waiting', present: 2 });
    const fourth = await join(3);
    const releases = (await Promise.all([first, third, fourth].map((channel) => next(channel)))) as { type: string; atMs: number }[];
    assert.equal(releases[0]!.type, 'release');
    assert.deepEqual(releases[1], releases[0]);
    assert.deepEqual(releases[2], releases[0]);
    for (const channel of [first, third, fourth]) channel.socket.destroy();
  });
});

test('a barrier client keeps to the protocol: at most 8 clock samples, nothing while it waits, one count per group', async () => {
  await withServer({ host: '127.0.0.1', maxBarrierClients: 2 }, async (port) => {
    const greedy = await member(port, 'g', 3);
    await next(greedy);
    for (let round = 0; round < 8; round++) {
      greedy.send({ type: 'clock', t: round });
      assert.equal(((await next(greedy)) as { type: string }).type, 'clock');
    }
    greedy.send({ type: 'clock', t: 9 });
    assert.match(JSON.stringify(await next(greedy)), /"code":"SOCKTUNE_ERR_PROTOCOL".*at most 8 clock messages/);

    const chatty = await member(port, 'g', 3);
    await next(chatty);
    chatty.send({ type: 'wait' });
    assert.deepEqual(await next(chatty), { type: 'waiting', present: 1 });
    chatty.send({ type: 'clock', t: 1 });
    assert.match(JSON.stringify(await next(chatty)), /sends nothing while it waits/);

    const waiter = await member(port, 'h', 3);
    await next(waiter);
    waiter.send({ type: 'wait' });
    await next(waiter);
    const other = await member(port, 'h', 4);
    assert.match(JSON.stringify(await next(other)), /"code":"SOCKTUNE_ERR_REFUSED".*barrier h waits for 3 clients; this client says 4/);
    const second = await member(port, 'i', 2);
    await next(second);
    second.send({ type: 'wait' });
    await next(second);
    const overflow = await member(port, 'j', 2);
    assert.match(JSON.stringify(await next(overflow)), /server busy: 2 clients wait at barriers \(max 2, --max-barrier-clients\)/);
    for (const channel of [greedy, chatty, waiter, other, second, overflow]) channel.socket.destroy();
  });
});

test('a barrier message is checked field by field', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ group: 'Bad Group' }, /barrier.group must be a name of \[a-z0-9._-\]/],
      [{ clients: 0 }, /barrier.clients must be an integer from 1 to 10000/],
      [{ name: 'two words' }, /barrier.name must be 1 to 64 printable ASCII characters without spaces/],
    ];
    for (const [fields, message] of cases) {
      const socket = connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      const channel = new ControlChannel(socket);
      channel.send({ type: 'barrier', protocol: CONTROL_PROTOCOL_VERSION, group: 'g', clients: 2, name: 'n', ...fields });
      assert.match(JSON.stringify(await next(channel)), message);
      socket.destroy();
    }
  });
});

test('a barrier client counts against --max-barrier-clients from its join, and samples the clock within one handshake timeout', async () => {
  await withServer({ host: '127.0.0.1', maxBarrierClients: 2, handshakeTimeoutMs: 400 }, async (port) => {
    const sampling = await Promise.all([member(port, 'g', 5), member(port, 'h', 5)]);
    for (const channel of sampling) assert.equal(((await next(channel)) as { type: string }).type, 'joined');
    const third = await member(port, 'i', 5);
    assert.match(JSON.stringify(await next(third)), /server busy: 2 clients wait at barriers/);
    // A clock sample every 150 ms is within each step's time but not the whole phase's.
    const slow = sampling[0];
    let answer: unknown;
    for (let round = 0; round < 5; round++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      slow.send({ type: 'clock', t: round });
      answer = await next(slow);
      if ((answer as { type: string }).type !== 'clock') break;
    }
    assert.match(JSON.stringify(answer), /"code":"SOCKTUNE_ERR_TIMEOUT"/);
    for (const channel of [...sampling, third]) channel.socket.destroy();
  });
});
