import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, mergeRuns, runCli, serverEvents, startServer, waitForServerEvents } from './cli-helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'socktune-merge-'));

interface TestEvent {
  outcome: string;
  bytesIn: number;
}

test("two rr runs started together with --start-at merge into totals equal to the server's", async () => {
  const server = await startServer(['--json']);
  try {
    assertSchema(serverEvents(server, 'listening')[0]);
    const startAt = Date.now() + 3000;
    const runs = await Promise.all(
      [0, 1].map(() =>
        runCli([
          'rr',
          '-c',
          '127.0.0.1',
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
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr);
      const document = JSON.parse(run.stdout) as { startedAt: string; startAt: number };
      assertSchema(document);
      assert.equal(document.startAt, startAt);
      assert.ok(Date.parse(document.startedAt) >= startAt, 'a run never starts before --start-at');
    }
    const document = await mergeRuns(runs, ['host0', 'host1'], work);
    const parts = runs.map((run) => JSON.parse(run.stdout) as { summary: { requests: number; sentRequests: number } });
    assert.equal(document.summary.requests, parts[0]!.summary.requests + parts[1]!.summary.requests);
    assert.equal(document.summary.latency.count, document.summary.requests);
    const events = await waitForServerEvents<TestEvent>(server, 'test', 2);
    assert.equal(events.length, 2);
    for (const event of events) assertSchema(event);
    // The server counted every request byte the merged clients say they sent.
    assert.equal(
      document.summary.sentRequests * 100,
      events.reduce((total, event) => total + event.bytesIn, 0),
    );
    assert.ok(document.intervals.length >= 2);
    for (const interval of document.intervals) assert.equal(interval.runs, 2, 'runs started together share every interval');

    const human = await runCli(['merge', join(work, 'host0.json'), join(work, 'host1.json')]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^merged 2 rr runs, started within \d+ ms:/);
    assert.match(human.stdout, /p99\.9/);
    assert.match(human.stdout, /percentiles from the merged histograms/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('merge refuses what does not add up, with SOCKTUNE_ERR_MERGE and exit 2', async () => {
  const info = await runCli(['info', '--json']);
  const infoFile = join(work, 'info.json');
  writeFileSync(infoFile, info.stdout);
  const notJson = join(work, 'text.txt');
  writeFileSync(notJson, 'hello\n');
  const wrongKind = await runCli(['merge', infoFile, infoFile]);
  assert.equal(wrongKind.code, 2);
  assert.match(wrongKind.stderr, /SOCKTUNE_ERR_MERGE: .*info\.json: info results cannot be merged/);
  const garbage = await runCli(['merge', notJson, infoFile]);
  assert.match(garbage.stderr, /SOCKTUNE_ERR_MERGE: .*text\.txt is not JSON/);
  const missing = await runCli(['merge', join(work, 'nope.json'), infoFile]);
  assert.match(missing.stderr, /SOCKTUNE_ERR_MERGE: cannot read .*nope\.json: ENOENT/);
  const one = await runCli(['merge', infoFile]);
  assert.match(one.stderr, /give at least two results/);
});

test('--start-at: a time that is not Unix milliseconds near now is a usage error', async () => {
  for (const bad of ['soon', String(Math.floor(Date.now() / 1000)), String(Date.now() + 3 * 24 * 3600 * 1000)]) {
    const result = await runCli(['rr', '-c', '127.0.0.1', '--start-at', bad]);
    assert.equal(result.code, 2, bad);
    assert.match(result.stderr, /SOCKTUNE_ERR_USAGE: --start-at takes a Unix time in milliseconds/);
  }
});

test('server --service echo: a plain echo port for --raw clients and balancers; --json reports its counters at exit', async () => {
  const server = await startServer(['--service', 'echo', '--io-model', 'workers', '--workers', '2', '--json']);
  const run = await runCli(['rr', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '0.5', '-C', '3', '--size', '32', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { summary: { sentRequests: number; requests: number } };
  assert.ok(result.summary.requests > 0);
  assert.equal(await server.stop(), 0);
  const [stopped] = serverEvents<{ metrics: { connectionsTotal: number; bytesIn: number; bytesOut: number } }>(server, 'stopped');
  assert.ok(stopped, server.stdout());
  assertSchema(stopped);
  assert.equal(stopped.metrics.connectionsTotal, 3);
  assert.equal(stopped.metrics.bytesIn, result.summary.sentRequests * 32);
  const bad = await runCli(['server', '--service', 'chargen']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /socktune server service takes one service name, one of echo, discard/);
  const both = await runCli(['server', '--service', 'echo', '--iperf3']);
  assert.match(both.stderr, /choose one of --iperf3, --sockperf and --service/);
});
