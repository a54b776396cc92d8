import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, runCli, runInProcess } from '../../testkit/cli.ts';

test('tune -u: the loss at each receive buffer and sender batch, a too small one put down to its socket’s drops, a report with the chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-tune-udp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const report = join(dir, 'udp.html');
  const run = await runCli(
    ['tune', '-u', '--quick', '-b', '1G', '-w', '4K,4M', '--batch', '64,1', '--duration-per-trial', '0.3', '--report', report, '--json'],
    120_000,
  );
  assert.equal(run.code, 0, run.stderr);
  const sweep = JSON.parse(run.stdout);
  assertSchema(sweep);
  assert.equal(sweep.mode, 'udp-receive-buffer');
  assert.deepEqual(sweep.options.batches, [1, 64]);
  assert.deepEqual(
    sweep.points.map((point: { batch: number; asked: number }) => [point.batch, point.asked]),
    [
      [1, 4096],
      [1, 4 * 1024 * 1024],
      [64, 4096],
      [64, 4 * 1024 * 1024],
    ],
  );
  for (const point of sweep.points) {
    assert.equal(point.trials.length, 1);
    // The kernel doubles a request (and has a floor); it never gives less, short of its cap.
    assert.ok(point.effective >= Math.min(2 * point.asked, 4608), JSON.stringify(point));
    // One per call is one per call; a batched sender at 1 Gbit/s sends a millisecond (about 85 datagrams) or 64 at once.
    if (point.batch === 1) assert.equal(point.trials[0].datagramsPerSend, 1);
  }
  // A 4 KiB buffer holds one or two datagrams: a sender at 1 Gbit/s overflows it, and the socket counts each drop.
  for (const small of sweep.points.filter((point: { asked: number }) => point.asked === 4096)) {
    assert.ok(small.maxDrops > 0, JSON.stringify(small));
    assert.equal(small.clean, false);
  }
  assert.deepEqual(
    sweep.byBatch.map((entry: { batch: number }) => entry.batch),
    [1, 64],
  );
  assert.notEqual(sweep.recommendation?.asked, 4096);
  assert.equal(sweep.report, report);
  assert.match(
    readFileSync(report, 'utf8'),
    /<svg class="chart line-chart"[\s\S]*Loss against the receive buffer[\s\S]*one datagram per send/,
  );
});

test('tune -u refuses the TCP sweep’s dimensions, a list of datagram sizes, and -b without -u', async () => {
  const workload = await runInProcess(['tune', '-u', '--workload', 'rr']);
  assert.equal(workload.code, 2);
  assert.match(workload.stderr, /tune -u sweeps the receive buffer at one rate; it does not take --workload/);
  const sizes = await runInProcess(['tune', '-u', '--size', '64,1K']);
  assert.match(sizes.stderr, /tune -u takes one datagram size/);
  const rate = await runInProcess(['tune', '-b', '1G']);
  assert.match(rate.stderr, /--bitrate goes with tune -u/);
  const batch = await runInProcess(['tune', '--batch', '1']);
  assert.match(batch.stderr, /--batch goes with tune -u/);
  const badBatch = await runInProcess(['tune', '-u', '--batch', '0,65']);
  assert.equal(badBatch.code, 2);
  assert.match(badBatch.stderr, /--batch/);
});
