/**
 * Beyond one load generator and one server: three client hosts started together and merged, and
 * two socktune servers behind a real L4 balancer (Debian's haproxy in TCP mode).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, mergeRuns, serverEvents, startServer, waitForServerEvents } from '../../testkit/cli.ts';
import { haproxyConfig } from '../../testkit/haproxy.ts';
import { netnsUnavailable, TestNetwork } from '../../testkit/netns.ts';

const unavailable = netnsUnavailable();
const work = mkdtempSync(join(tmpdir(), 'socktune-scale-out-'));

test(
  'three client hosts started together with --start-at: the merged result equals the server-side totals',
  { skip: unavailable ?? false },
  async () => {
    const network = await TestNetwork.create({ server: {}, c1: {}, c2: {}, c3: {} });
    try {
      const address = network.host('server').address;
      const server = await startServer(['--bind', address, '--json'], (args) => network.spawn('server', process.execPath, args));
      const startAt = Date.now() + 3000;
      const clients = ['c1', 'c2', 'c3'];
      const runs = await Promise.all(
        clients.map((host) =>
          network.exec(host, process.execPath, [
            BIN,
            'rr',
            '-c',
            address,
            '-p',
            String(server.port),
            '-t',
            '1',
            '-i',
            '0.5',
            '-C',
            '2',
            '--size',
            '100',
            '--start-at',
            String(startAt),
            '--json',
          ]),
        ),
      );
      const document = await mergeRuns(runs, clients, work);
      const events = await waitForServerEvents<{ peer: string; bytesIn: number }>(server, 'test', 3);
      await server.stop();
      assert.equal(events.length, 3);
      // Each test came from its own host, and the server's byte counts add up to the merged requests.
      assert.deepEqual(
        new Set(events.map((event) => event.peer.replace(/:\d+$/, ''))),
        new Set(clients.map((host) => network.host(host).address)),
      );
      assert.equal(
        document.summary.sentRequests * 100,
        events.reduce((total, event) => total + event.bytesIn, 0),
      );
      const parts = runs.map((run) => JSON.parse(run.stdout) as { summary: { requests: number } });
      assert.equal(
        document.summary.requests,
        parts.reduce((total, part) => total + part.summary.requests, 0),
      );
      assert.equal(document.summary.latency.count, document.summary.requests);
    } finally {
      await network.destroy();
    }
  },
);

const haveHaproxy = existsSync('/usr/sbin/haproxy');

test(
  'two socktune servers behind haproxy (TCP mode): clients through the balancer reach both, every byte counted',
  { skip: unavailable ?? (haveHaproxy ? false : 'haproxy is not installed (.ci/run installs it)') },
  async () => {
    const network = await TestNetwork.create({ balancer: {}, backend1: {}, backend2: {}, client: {} });
    try {
      const backends = await Promise.all(
        ['backend1', 'backend2'].map((host) =>
          startServer(
            ['--service', 'echo', '--io-model', 'workers', '--workers', '2', '--bind', network.host(host).address, '--json'],
            (args) => network.spawn(host, process.execPath, args),
          ),
        ),
      );
      const config = join(work, 'haproxy.cfg');
      writeFileSync(
        config,
        haproxyConfig({
          listen: `${network.host('balancer').address}:7000`,
          backends: backends.map((backend, index) => `${network.host(`backend${index + 1}`).address}:${backend.port}`),
        }),
      );
      const haproxy = network.spawn('balancer', '/usr/sbin/haproxy', ['-f', config, '-db']);
      let haproxyLog = '';
      haproxy.stderr!.on('data', (chunk: Buffer) => (haproxyLog += chunk.toString()));
      await network.waitForListening('balancer', 7000).catch((error: Error) => {
        throw new Error(`${error.message}; haproxy said: ${haproxyLog}`);
      });
      const run = await network.exec('client', process.execPath, [
        BIN,
        'rr',
        '--raw',
        '-c',
        `${network.host('balancer').address}:7000`,
        '-t',
        '1',
        '-C',
        '8',
        '--size',
        '64',
        '--json',
      ]);
      assert.equal(run.code, 0, `${run.stderr}\n${haproxyLog}`);
      const result = JSON.parse(run.stdout) as { summary: { sentRequests: number; requests: number } };
      assert.ok(result.summary.requests > 0);
      const stopped = await Promise.all(
        backends.map(async (backend) => {
          await backend.stop();
          const [event] = serverEvents<{ metrics: { connectionsTotal: number; bytesIn: number } }>(backend, 'stopped');
          assert.ok(event, backend.stdout());
          return event.metrics;
        }),
      );
      for (const metrics of stopped) assert.ok(metrics.connectionsTotal > 0, 'round robin sent connections to both servers');
      assert.equal(
        stopped.reduce((total, metrics) => total + metrics.connectionsTotal, 0),
        8,
      );
      assert.equal(
        stopped.reduce((total, metrics) => total + metrics.bytesIn, 0),
        result.summary.sentRequests * 64,
      );
    } finally {
      await network.destroy();
    }
  },
);
