import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN } from '../../testkit/cli.ts';
import { namespaceExists, netnsUnavailable, TestNetwork } from '../../testkit/netns.ts';

const skip = netnsUnavailable() ?? false;

test('test hosts: addresses in 198.18.0.0/15, a tbf rate limit on both ends of a link, reachable from each other', { skip }, async () => {
  const network = await TestNetwork.create({ server: { rateMbit: 200 }, client: {} });
  try {
    for (const host of network.hosts.values()) assert.match(host.address, /^198\.1[89]\./);
    assert.match(await network.qdiscs('server'), /qdisc tbf .* rate 200Mbit/);
    assert.doesNotMatch(await network.qdiscs('client'), /tbf/);
    const server = network.spawn('server', process.execPath, [
      BIN,
      'server',
      '--service',
      'echo',
      '--bind',
      network.host('server').address,
      '-p',
      '7000',
    ]);
    await network.waitForListening('server', 7000);
    const rr = await network.exec('client', process.execPath, [
      BIN,
      'rr',
      '--raw',
      '-c',
      `${network.host('server').address}:7000`,
      '-t',
      '0.3',
      '--json',
    ]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.ok(JSON.parse(rr.stdout).summary.requests > 0);
    // Nothing listens on the client's own loopback: the request really crossed the link.
    const local = await network.exec('client', process.execPath, [BIN, 'rr', '--raw', '-c', '127.0.0.1:7000', '-t', '0.3']);
    assert.equal(local.code, 3);
    server.kill('SIGTERM');
  } finally {
    await network.destroy();
  }
});

test('teardown: destroy() kills what runs inside and deletes every namespace, also after a failure', { skip }, async () => {
  const network = await TestNetwork.create({ a: {}, b: { rateMbit: 50 } });
  const names = [...network.hosts.values()].map((host) => host.namespace);
  const sleeper = network.spawn('a', 'sleep', ['600']);
  await assert.rejects(async () => {
    try {
      throw new Error('a test failing half-way');
    } finally {
      await network.destroy();
    }
  }, /failing half-way/);
  assert.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'the process inside was killed');
  for (const name of names) assert.equal(await namespaceExists(name), false, `${name} is gone`);
});

test('namespaces left by a run that died are swept by the next one', { skip }, async () => {
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const stale = `socktune-${pidMax + 1}-0-orphan`;
  execFileSync('ip', ['netns', 'add', stale]);
  const network = await TestNetwork.create({ a: {} });
  await network.destroy();
  assert.equal(await namespaceExists(stale), false);
});
