import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, readdirSync } from 'node:fs';
import { SockperfUdpServer } from '../../../../src/bench/servers/sockperf/sockperf-udp.ts';
import { encodeMessage, FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP, messageFlags } from '../../../../src/protocols/sockperf/codec.ts';
import { SendBudget } from '../../../../src/transport/io/send-budget.ts';
import { withTimeout } from '../../../../src/core/timeout.ts';
import { freePort, run } from '../../../../testkit/helpers.ts';
import { assertSchema, BIN, runCli } from '../../../../testkit/cli.ts';

const haveSockperf = ['/usr/bin/sockperf', '/usr/local/bin/sockperf'].some((path) => existsSync(path));
const skip = haveSockperf ? false : 'sockperf is not installed (.ci/run installs it)';

async function client(): Promise<{ socket: UdpSocket; replies: Buffer[]; next: () => Promise<Buffer> }> {
  const socket = createSocket('udp4');
  const replies: Buffer[] = [];
  const waiting: ((reply: Buffer) => void)[] = [];
  socket.on('message', (reply) => (waiting.length > 0 ? waiting.shift()!(reply) : replies.push(reply)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const next = (): Promise<Buffer> =>
    withTimeout(
      new Promise<Buffer>((resolve) => (replies.length > 0 ? resolve(replies.shift()!) : waiting.push(resolve))),
      5000,
      'a reply',
    );
  return { socket, replies, next };
}

test('the UDP side answers a ping with itself, CLIENT cleared; malformed, warm-up and no-reply messages get nothing', async (t) => {
  const server = new SockperfUdpServer(undefined);
  const port = await freePort();
  await server.listen('127.0.0.1', port);
  const { socket, replies, next } = await client();
  t.after(async () => {
    socket.close();
    await server.close();
  });
  const ping = encodeMessage(7n, FLAG_CLIENT | FLAG_PONG_REQUEST, 64);
  const wrongLength = encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, 64);
  wrongLength.writeUInt32BE(1000, 10);
  for (const datagram of [
    Buffer.alloc(10),
    wrongLength,
    encodeMessage(2n, FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 64),
    encodeMessage(3n, FLAG_CLIENT, 64),
    ping,
  ])
    socket.send(datagram, port, '127.0.0.1');
  const reply = await next();
  assert.equal(reply.length, 64);
  assert.equal(reply.readBigUInt64BE(0), 7n, 'the ping’s own sequence number: the four before it got no answer (one socket, in order)');
  assert.equal(messageFlags(reply), FLAG_PONG_REQUEST);
  assert.deepEqual(reply.subarray(14), ping.subarray(14));
  assert.deepEqual(replies, []);
  assert.deepEqual(server.counts, { messagesIn: 3, replies: 1, overRate: 0, malformed: 2 });
});

test('replies stay within the reply budget: over it they are not sent, and counted', async (t) => {
  // 1 KiB/s: the first burst of replies go, then the budget is spent.
  const budget = new SendBudget(1024);
  const server = new SockperfUdpServer(budget);
  const port = await freePort();
  await server.listen('127.0.0.1', port);
  const { socket, next } = await client();
  t.after(async () => {
    socket.close();
    await server.close();
  });
  const ping = encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, 1400);
  // A burst's worth and ten more: few enough for the server's default receive buffer to hold them all.
  const pings = Math.ceil(budget.burstBytes / 1400) + 10;
  for (let i = 0; i < pings; i++) socket.send(ping, port, '127.0.0.1');
  await next();
  const counted = (): number => server.counts.replies + server.counts.overRate;
  const deadline = Date.now() + 5000;
  while (counted() < pings && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(server.counts.messagesIn, pings);
  assert.ok(server.counts.overRate > 0, JSON.stringify(server.counts));
  // Within a second at 1 KiB/s: one burst, and at most a datagram past it.
  assert.ok(server.counts.replies * 1428 <= budget.burstBytes + 2 * 1428, `${server.counts.replies} replies: no more than the burst`);
});

test('stock sockperf ping-pong and under-load over UDP against socktune server sockperf', { skip }, async (t) => {
  const server = spawn(process.execPath, [BIN, 'server', 'sockperf', '-p', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => server.kill('SIGTERM'));
  const port = await withTimeout(
    new Promise<number>((resolve) => {
      let out = '';
      server.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on [\d.]+:(\d+) .*UDP too/.exec(out);
        if (match) resolve(Number(match[1]));
      });
    }),
    15_000,
    'the listening line',
  );
  for (const [mode, extra] of [
    ['pp', []],
    ['ul', ['--mps', '5000']],
  ] as const) {
    const { stdout, stderr } = await run('sockperf', [mode, '-i', '127.0.0.1', '-p', String(port), '-t', '1', '-m', '64', ...extra], {
      timeout: 30_000,
    });
    const text = `${stdout}\n${stderr}`;
    const observations = Number(/Total (\d+) observations/.exec(text)?.[1] ?? 0);
    assert.ok(observations > 10, `${mode}: ${text}`);
    assert.match(text, /# duplicated messages = 0/);
  }
});

test('rr -u --sockperf against a stock sockperf server over UDP: answered requests, and the lost ones counted', { skip }, async (t) => {
  const port = await freePort();
  const server = spawn('sockperf', ['sr', '-i', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  t.after(() => server.kill());
  // sockperf sr binds UDP: wait for it in the kernel's table.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await run('ss', ['-Hlun', `sport = :${port}`])).stdout.trim() === '')
    await new Promise((resolve) => setTimeout(resolve, 50));
  const result = await runCli(['rr', '-u', '--sockperf', '-c', '127.0.0.1', '-p', String(port), '-t', '1', '-C', '2', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const document = JSON.parse(result.stdout);
  assertSchema(document);
  assert.equal(document.options.protocol, 'udp');
  assert.ok(document.summary.requests > 10);
  assert.equal(document.summary.udp.foreign, 0, 'every reply answered a request of its own socket');
  assert.equal(document.summary.udp.serverReceived, null, 'a stock sockperf server reports nothing');
});

test('on threads (the thread models): each a socket of the port’s SO_REUSEPORT group answers pings, counts the rest, and closes its socket', async (t) => {
  const descriptors = (): number => readdirSync('/proc/self/fd').length;
  const before = descriptors();
  const server = new SockperfUdpServer(undefined, 2);
  const port = await freePort();
  await server.listen('127.0.0.1', port);
  let closed = false;
  t.after(async () => {
    if (!closed) await server.close();
  });
  const { socket, next } = await client();
  t.after(() => socket.close());
  socket.send(Buffer.alloc(5), port, '127.0.0.1');
  socket.send(encodeMessage(42n, FLAG_CLIENT | FLAG_PONG_REQUEST, 64), port, '127.0.0.1');
  const reply = await next();
  assert.equal(reply.readBigUInt64BE(0), 42n);
  assert.equal(messageFlags(reply), FLAG_PONG_REQUEST);
  // The thread counts a reply once its sendto returned, which may be after the reply arrived here.
  const deadline = Date.now() + 5000;
  while (server.counts.replies === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  // One source: the kernel gives all its datagrams to one socket of the group, which read the junk first.
  assert.deepEqual(server.counts, { messagesIn: 1, replies: 1, overRate: 0, malformed: 1 });
  await server.close();
  closed = true;
  assert.equal(descriptors(), before + 1, 'only the client’s own socket is left open');
});
