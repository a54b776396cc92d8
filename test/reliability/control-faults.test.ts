/**
 * Faults at every step of socktune's own protocol: the client resets or half-closes after
 * connecting, after its start message, after the server's ready, in the middle of data, and after
 * its finish. Each time the server ends that test by itself, logs it, keeps serving, and its
 * descriptors and tests go back to where they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { ControlServer, type TestLog } from '../../src/bench/servers/control/control-server.ts';
import { CONTROL_PROTOCOL_VERSION } from '../../src/bench/control/control-protocol.ts';
import { runRr } from '../../src/bench/engines/rr.ts';
import { JsonLinesDecoder } from '../../src/framing/json-lines.ts';
import { connectedClient } from '../../testkit/helpers.ts';

const openFds = (): number => readdirSync('/proc/self/fd').length;
const STEPS = ['connected', 'start sent', 'ready received', 'mid-data', 'finish sent'] as const;
type Step = (typeof STEPS)[number];

/** Speaks the control protocol by hand up to `step`, then resets or half-closes everything. */
async function faultAt(port: number, step: Step, ending: 'reset' | 'half-close'): Promise<void> {
  const control = await connectedClient(port);
  const decoder = new JsonLinesDecoder();
  const replies: unknown[] = [];
  let wake: (() => void) | undefined;
  control.on('data', (chunk: Buffer) => {
    replies.push(...decoder.push(chunk));
    wake?.();
  });
  control.on('error', () => {});
  const reply = async (): Promise<{ type: string; dataPort?: number }> => {
    while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return replies.shift() as { type: string; dataPort?: number };
  };
  const sockets = [control];
  if (step !== 'connected') {
    control.write(
      `${JSON.stringify({ type: 'start', protocol: CONTROL_PROTOCOL_VERSION, service: 'echo', server: {}, maxDurationMs: 5000 })}\n`,
    );
    if (step !== 'start sent') {
      const ready = await reply();
      assert.equal(ready.type, 'ready');
      if (step !== 'ready received') {
        const data = await connectedClient(ready.dataPort!);
        data.on('error', () => {});
        data.resume();
        sockets.push(data);
        data.write(Buffer.alloc(100_000, 1));
        if (step === 'finish sent') {
          // (A socket that has half-closed cannot be reset: Node then never releases its handle.)
          if (ending === 'half-close') data.end();
          control.write(`${JSON.stringify({ type: 'finish' })}\n`);
        }
      }
    }
  }
  for (const socket of sockets.reverse()) {
    if (ending === 'reset') socket.resetAndDestroy();
    else socket.end();
  }
  await Promise.all(
    sockets.map((socket) => new Promise((resolve) => (socket.closed ? resolve(undefined) : socket.once('close', resolve)))),
  );
}

test(
  'a client that resets or half-closes at any protocol step: the server ends that test, logs it (unless it never said a word) and keeps serving',
  { timeout: 90_000 },
  async (t) => {
    const server = new ControlServer({ port: 0, handshakeTimeoutMs: 1000 });
    const { port } = (await server.listen()) as AddressInfo;
    const logs: TestLog[] = [];
    server.on('test', (log: TestLog) => logs.push(log));
    const wellFormed = async (): Promise<void> => {
      const result = await runRr({
        target: { host: '127.0.0.1', port },
        durationSec: 0.1,
        omitSec: 0,
        size: 64,
        connections: 1,
        depth: 1,
        client: {},
        server: {},
        intervalSec: 0.1,
      });
      assert.ok(result.summary.requests > 0);
    };
    try {
      await wellFormed();
      const baseline = openFds();
      let faults = 0;
      for (const step of STEPS) {
        for (const ending of ['reset', 'half-close'] as const) {
          const logged = logs.length;
          await faultAt(port, step, ending);
          faults++;
          // A connection that ends before its first byte (a probe, a scan) is no test: nothing to log.
          const silent = step === 'connected';
          const deadline = Date.now() + (silent ? 1500 : 20_000);
          while (((logs.length === logged && !silent) || server.testsRunning > 0) && Date.now() < deadline)
            await new Promise((resolve) => setTimeout(resolve, 20));
          assert.equal(server.testsRunning, 0, `${step}, ${ending}: the test was ended`);
          if (silent) assert.equal(logs.length, logged, `${step}, ${ending}: nothing said, nothing logged`);
          else assert.ok(logs.length > logged, `${step}, ${ending}: the server logged the test`);
          await wellFormed();
        }
      }
      const deadline = Date.now() + 5000;
      while (openFds() > baseline && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      t.diagnostic(
        `${faults} faults injected at ${STEPS.length} protocol steps; fds ${baseline} → ${openFds()}; outcomes: ${logs.map((log) => log.outcome).join(' ')}`,
      );
      assert.ok(openFds() <= baseline, `fds ${baseline} → ${openFds()}`);
      assert.ok(logs.some((log) => log.outcome === 'failed' && /PEER_GONE|TIMEOUT|PROTOCOL/.test(log.error ?? '')));
    } finally {
      await server.close();
    }
  },
);
