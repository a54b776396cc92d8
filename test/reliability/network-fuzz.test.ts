/**
 * A network fuzzer against live servers: for a few seconds, clients send random bytes and garbage
 * frames, close half-way or reset; meanwhile well-formed clients keep testing, and every one of
 * their exchanges must succeed. Bounded in time and connections; ends by itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import net from 'node:net';
import { runRr } from '../../src/bench/engines/rr.ts';
import { FLAG_CLIENT, FLAG_PONG_REQUEST, encodeMessage } from '../../src/protocols/sockperf/codec.ts';
import { runIperf3Stream } from '../../src/bench/engines/iperf3.ts';
import { connectMessages } from '../../src/transport/messages/message-endpoints.ts';
import { encodeFrame } from '../../src/framing/length-prefix.ts';
import { startServer, type RunningServer } from '../../testkit/cli.ts';

const FUZZ_MS = 4000;
const FUZZERS = 6;

/**
 * One hostile connection: random bytes, sometimes a frame header promising too much, then FIN,
 * RST or nothing. It comes from other addresses than the well-formed clients: per-address caps
 * (the iperf3 server's pending handshakes) rightly let one address lock out only itself.
 */
function fuzzOnce(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${randomInt(2, 2 + FUZZERS)}` });
    socket.on('error', () => {});
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('close', () => resolve());
    socket.on('data', () => {});
    socket.on('connect', () => {
      const pieces = randomInt(1, 5);
      for (let i = 0; i < pieces; i++) {
        const kind = randomInt(0, 4);
        if (kind === 0) socket.write(randomBytes(randomInt(1, 4096)));
        else if (kind === 1)
          socket.write(
            `${JSON.stringify({ type: 'start', protocol: randomInt(0, 3), service: 'echo', server: { workers: randomInt(-5, 300) }, maxDurationMs: randomInt(-1, 5_000_000) })}\n`,
          );
        else if (kind === 2) socket.write(Buffer.from([0xff, 0xff, 0xff, randomInt(0, 256)]));
        else socket.write(encodeFrame(randomBytes(randomInt(0, 512))));
      }
      const ending = randomInt(0, 3);
      if (ending === 0) socket.end();
      else if (ending === 1) socket.resetAndDestroy();
    });
  });
}

async function fuzz(ports: number[], until: number): Promise<number> {
  let connections = 0;
  await Promise.all(
    Array.from({ length: FUZZERS }, async () => {
      while (Date.now() < until) {
        await fuzzOnce(ports[randomInt(0, ports.length)]!);
        connections++;
      }
    }),
  );
  return connections;
}

/** Well-formed exchanges with each server, one after another, until the fuzzing stops. */
async function wellFormed(servers: Record<string, RunningServer>, until: number): Promise<Record<string, number>> {
  const done: Record<string, number> = { control: 0, sockperf: 0, iperf3: 0, messages: 0 };
  const checks: Record<string, () => Promise<void>> = {
    control: async () => {
      const result = await runRr({
        target: { host: '127.0.0.1', port: servers.control!.port },
        durationSec: 0.2,
        omitSec: 0,
        size: 64,
        connections: 2,
        depth: 1,
        client: {},
        server: {},
        intervalSec: 0.2,
      });
      assert.ok(result.summary.requests > 0);
    },
    sockperf: async () => {
      const payload = encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, 64);
      const result = await runRr({
        target: { host: '127.0.0.1', port: servers.sockperf!.port },
        raw: true,
        payload,
        size: 64,
        durationSec: 0.2,
        omitSec: 0,
        connections: 1,
        depth: 1,
        client: {},
        server: {},
        intervalSec: 0.2,
      });
      assert.ok(result.summary.requests > 0);
    },
    iperf3: async () => {
      const result = await runIperf3Stream({
        host: '127.0.0.1',
        port: servers.iperf3!.port,
        durationSec: 0.3,
        omitSec: 0,
        writeSize: 128 * 1024,
        parallel: 1,
        direction: 'forward',
        noDelay: false,
        intervalSec: 0.3,
      });
      assert.ok(result.summary.receiver!.bytes > 0);
    },
    messages: async () => {
      const socket = await connectMessages({ host: '127.0.0.1', port: servers.messages!.port });
      const echoed = new Promise<Buffer>((resolve) => socket.once('message', (message: Buffer) => resolve(Buffer.from(message))));
      socket.send(Buffer.from('well-formed'));
      assert.equal((await echoed).toString(), 'well-formed');
      await socket.close();
    },
  };
  while (Date.now() < until) {
    for (const [name, check] of Object.entries(checks)) {
      await check();
      done[name]!++;
    }
  }
  return done;
}

test('random bytes and garbage frames from many connections: every well-formed exchange still succeeds', { timeout: 60_000 }, async (t) => {
  const servers: Record<string, RunningServer> = {
    control: await startServer(['--json']),
    sockperf: await startServer(['--sockperf', '--json']),
    iperf3: await startServer(['--iperf3', '--json']),
    messages: await startServer(['--service', 'msg-echo', '--json']),
  };
  try {
    const until = Date.now() + FUZZ_MS;
    const [hostile, good] = await Promise.all([
      fuzz(
        Object.values(servers).map((server) => server.port),
        until,
      ),
      wellFormed(servers, until),
    ]);
    t.diagnostic(`${hostile} hostile connections; well-formed exchanges: ${JSON.stringify(good)}`);
    assert.ok(hostile > 50, `the fuzzer made ${hostile} connections`);
    for (const [name, count] of Object.entries(good)) assert.ok(count >= 1, `${name}: ${count} well-formed exchanges`);
  } finally {
    for (const [name, server] of Object.entries(servers)) {
      assert.equal(await server.stop(), 0, `${name} server exits cleanly`);
      assert.doesNotMatch(server.stderr(), /unexpected error|TypeError|RangeError/, `${name} server stderr`);
    }
  }
});
