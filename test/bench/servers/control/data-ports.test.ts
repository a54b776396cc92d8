import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server } from 'node:net';
import { RemoteTest } from '../../../../src/bench/control/remote-test.ts';
import { portIsFree } from '../../../../src/core/socket-syscalls.ts';
import { withServer } from '../../../../testkit/control-messages.ts';
import { runInProcess } from '../../../../testkit/cli.ts';

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
