import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, runCli, runInProcess } from '../../testkit/cli.ts';

test('tune -u: the loss at each receive buffer, a too small one put down to its socket’s drops, a report with the chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-tune-udp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const report = join(dir, 'udp.html');
  const run = await runCli(
    ['tune', '-u', '--quick', '-b', '1G', '-w', '4K,4M', '--duration-per-trial', '0.3', '--report', report, '--json'],
    120_000,
  );
  assert.equal(run.code, 0, run.stderr);
  const sweep = JSON.parse(run.stdout);
  assertSchema(sweep);
  assert.equal(sweep.mode, 'udp-receive-buffer');
  const [small, large] = sweep.points;
  assert.deepEqual([small.asked, large.asked], [4096, 4 * 1024 * 1024]);
  for (const point of sweep.points) {
    assert.equal(point.trials.length, 1);
    // The kernel doubles a request (and has a floor); it never gives less, short of its cap.
    assert.ok(point.effective >= Math.min(2 * point.asked, 4608), JSON.stringify(point));
  }
  // A 4 KiB buffer holds one or two datagrams: a sender at 1 Gbit/s overflows it, and the socket counts each drop.
  assert.ok(small.maxDrops > 0, JSON.stringify(small));
  assert.equal(small.clean, false);
  assert.notEqual(sweep.recommendation?.asked, 4096);
  assert.equal(sweep.report, report);
  assert.match(readFileSync(report, 'utf8'), /<svg class="chart line-chart"[\s\S]*Loss against the receive buffer/);
});

test('tune -u refuses the TCP sweep’s dimensions, a list of datagram sizes, and -b without -u', async () => {
  const workload = await runInProcess(['tune', '-u', '--workload', 'rr']);
  assert.equal(workload.code, 2);
  assert.match(workload.stderr, /tune -u sweeps the receive buffer at one rate; it does not take --workload/);
  const sizes = await runInProcess(['tune', '-u', '--size', '64,1K']);
  assert.match(sizes.stderr, /tune -u takes one datagram size/);
  const rate = await runInProcess(['tune', '-b', '1G']);
  assert.match(rate.stderr, /--bitrate goes with tune -u/);
});
