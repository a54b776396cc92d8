import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server } from 'node:net';
import { RemoteTest } from '../../../../src/bench/control/remote-test.ts';
import { portIsFree } from '../../../../src/core/socket-syscalls.ts';
import { withServer } from '../../../../testkit/control-messages.ts';
import { runInProcess } from '../../../../testkit/cli.ts';
import { runProcess } from '../../../../testkit/helpers.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Three consecutive ports free for TCP and UDP on 127.0.0.1 right now. */
function freeRange(): number {
  for (let from = 20_000 + Math.floor(Math.random() * 20_000); from < 60_000; from += 3) {
    const ports = [from, from + 1, from + 2];
    if (ports.every((port) => portIsFree('tcp', 'ipv4', '127.0.0.1', port) && portIsFree('udp', 'ipv4', '127.0.0.1', port))) return from;
  }
  throw new Error('no three free ports in a row');
}

test('--data-ports: each test listens on the next free port of the range, skips one held elsewhere, and a full range refuses', async (t) => {
  const from = freeRange();
  const holder: Server = createTcpServer();
  await new Promise<void>((resolve) => holder.listen(from + 1, '127.0.0.1', resolve));
  t.after(() => holder.close());
  await withServer({ host: '127.0.0.1', dataPorts: { from, to: from + 2 } }, async (port) => {
    const target = { host: '127.0.0.1', port };
    const first = await RemoteTest.start(target, 'echo', {}, 10_000);
    const second = await RemoteTest.start(target, 'echo', { ioModel: 'workers', workers: 1 }, 10_000);
    // A UDP listener is a port of the range too: the third and last one free for UDP is the one TCP holds elsewhere.
    const udp = await RemoteTest.start(target, 'udp-sink', {}, 10_000);
    try {
      assert.deepEqual([first.ready.dataPort, second.ready.dataPort, udp.ready.dataPort], [from, from + 2, from + 1]);
      await assert.rejects(RemoteTest.start(target, 'echo', {}, 10_000), /no free data port in \d+-\d+ \(--data-ports\)/);
      await first.finish();
      // The port a finished test held is free again.
      const again = await RemoteTest.start(target, 'discard', {}, 10_000);
      assert.equal(again.ready.dataPort, from);
      await again.finish();
    } finally {
      [first, second, udp].forEach((test) => test.abort());
    }
  });
});

test('--data-ports takes FROM-TO or one port', async () => {
  for (const bad of ['20000-19999', '0-10', '70000', 'a-b', '1-2-3']) {
    const run = await runInProcess(['server', '--data-ports', bad, '-p', '0']);
    assert.equal(run.code, 2, bad);
    assert.match(run.stderr, /--data-ports takes a port range FROM-TO within 1-65535/);
  }
});

test('a refused test gives its data port back: a range of one port still serves after refusals', async () => {
  const from = freeRange();
  await withServer({ host: '127.0.0.1', dataPorts: { from, to: from } }, async (port) => {
    const target = { host: '127.0.0.1', port };
    const settings = { datagramBytes: 100, bitsPerSecond: 1000, streams: 1 };
    // Refused before it listens (-R takes no thread model): three times over a range of one.
    for (let attempt = 0; attempt < 3; attempt++)
      await assert.rejects(
        RemoteTest.start(target, 'udp-source', { ioModel: 'workers', workers: 1 }, 10_000, false, [], settings),
        /loop model/,
      );
    const test = await RemoteTest.start(target, 'echo', {}, 10_000);
    assert.equal(test.ready.dataPort, from);
    await test.finish();
  });
});

const SCRIPT = `
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { RemoteTest } from '${new URL('../../../../src/bench/control/remote-test.ts', import.meta.url).pathname}';
import { ControlServer } from '${new URL('../../../../src/bench/servers/control/control-server.ts', import.meta.url).pathname}';
execFileSync('ip', ['link', 'set', 'lo', 'up']);
// Two ephemeral ports in this namespace, one of them held: a port-0 bind has one port to give.
writeFileSync('/proc/sys/net/ipv4/ip_local_port_range', '40000 40001');
const holder = createSocket('udp4');
await new Promise((resolve) => holder.bind(40001, '127.0.0.1', resolve));
const server = new ControlServer({ host: '127.0.0.1', port: 5210 });
await server.listen();
const target = { host: '127.0.0.1', port: 5210 };
const first = await RemoteTest.start(target, 'udp-sink', { ioModel: 'workers', workers: 1 }, 10_000);
const second = await RemoteTest.start(target, 'udp-sink', { ioModel: 'workers', workers: 1 }, 10_000).then(
  (test) => test.ready.dataPort,
  (error) => error.message,
);
console.log(JSON.stringify({ first: first.ready.dataPort, second }));
first.abort();
holder.close();
await server.close();
process.exit(0);
`;

test('a threaded UDP test never joins another’s SO_REUSEPORT group, even where the kernel has one port left to give', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('a network namespace of its own needs root (unshare -n)');
  const dir = mkdtempSync(join(tmpdir(), 'socktune-reuseport-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'two-tests.ts');
  writeFileSync(script, SCRIPT);
  const run = await runProcess('unshare', ['-n', process.execPath, script], { timeoutMs: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  const { first, second } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { first: number; second: number | string };
  assert.equal(first, 40000);
  // The only free port is the first test's: the second is refused rather than sharing its socket group.
  assert.notEqual(second, first);
  assert.equal(typeof second, 'string', `the second test got port ${second}`);
});
