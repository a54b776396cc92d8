/**
 * Soak: a mixed workload against one `socktune server` — stream --verify both ways, rr, crr and
 * connection churn, all at once — for SOCKTUNE_SOAK_SECONDS (5 in `npm test`, 60 in
 * `npm run reliability`). Nothing may be lost or corrupted, every run must succeed, and the
 * server's RSS must not keep growing (its slope is reported).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runConns } from '../../src/bench/engines/conns.ts';
import { runCrr } from '../../src/bench/engines/crr.ts';
import { runRr } from '../../src/bench/engines/rr.ts';
import { runStream } from '../../src/bench/engines/stream.ts';
import { startServer } from '../../testkit/cli.ts';

const SECONDS = Number(process.env.SOCKTUNE_SOAK_SECONDS ?? 5);

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((row) => row.startsWith('VmRSS:'));
  return Number(/\d+/.exec(line ?? '')?.[0] ?? 0) * 1024;
}

/** Least-squares slope of (seconds, bytes) samples, in bytes per second. */
function slope(samples: [number, number][]): number {
  const n = samples.length;
  const meanX = samples.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = samples.reduce((sum, [, y]) => sum + y, 0) / n;
  const covariance = samples.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = samples.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  return variance === 0 ? 0 : covariance / variance;
}

test(
  `soak: ${SECONDS} s of stream --verify, rr, crr and connection churn at once: nothing lost or corrupted, RSS flat`,
  { timeout: (SECONDS + 120) * 1000 },
  async (t) => {
    const server = await startServer();
    const target = { host: '127.0.0.1', port: server.port };
    const common = { target, omitSec: 0, client: {}, server: {}, intervalSec: 1 };
    const started = Date.now();
    const until = started + SECONDS * 1000;
    const totals = { streams: 0, bytesVerified: 0, bytesCorrupted: 0, bytesLost: 0, requests: 0, transactions: 0, connectionsChurned: 0 };
    const rss: [number, number][] = [];
    const sampler = setInterval(() => rss.push([(Date.now() - started) / 1000, rssOf(server.child.pid!)]), 250);
    const loop = async (body: () => Promise<void>): Promise<void> => {
      while (Date.now() < until) await body();
    };
    try {
      await Promise.all([
        loop(async () => {
          const direction = totals.streams % 2 === 0 ? 'forward' : 'reverse';
          const result = await runStream({ ...common, durationSec: 1, writeSize: 64 * 1024, parallel: 2, direction, verify: true });
          totals.streams++;
          totals.bytesVerified += result.summary.verify!.bytesChecked;
          totals.bytesCorrupted += result.summary.verify!.bytesCorrupted;
          totals.bytesLost += result.summary.verify!.bytesLost;
        }),
        loop(async () => {
          totals.requests += (await runRr({ ...common, durationSec: 1, size: 512, connections: 4, depth: 2 })).summary.requests;
        }),
        loop(async () => {
          totals.transactions += (await runCrr({ ...common, durationSec: 1, size: 64, concurrency: 4 })).summary.transactions;
        }),
        loop(async () => {
          const result = await runConns({
            target,
            count: 200,
            holdSec: 0.3,
            sourceAddresses: [],
            concurrency: 32,
            openTimeoutSec: 10,
            client: {},
            server: {},
          });
          totals.connectionsChurned += result.summary.opened;
        }),
      ]);
    } finally {
      clearInterval(sampler);
      assert.equal(await server.stop(), 0);
    }
    // The first fifth is warm-up (code loaded, pools grown); the rest must not trend upward.
    const settled = rss.filter(([seconds]) => seconds >= SECONDS / 5);
    const slopeKiBPerSecond = slope(settled) / 1024;
    const [first, last] = [settled[0]![1], settled.at(-1)![1]];
    t.diagnostic(
      `${SECONDS} s: ${totals.streams} verified streams (${(totals.bytesVerified / 2 ** 30).toFixed(2)} GiB checked, ${totals.bytesCorrupted} corrupted, ${totals.bytesLost} lost), ${totals.requests} requests, ${totals.transactions} connect/request/close transactions, ${totals.connectionsChurned} connections churned; server RSS ${(first / 2 ** 20).toFixed(1)} → ${(last / 2 ** 20).toFixed(1)} MiB, slope ${slopeKiBPerSecond.toFixed(1)} KiB/s`,
    );
    assert.equal(totals.bytesCorrupted, 0);
    assert.equal(totals.bytesLost, 0);
    assert.ok(totals.streams >= 2 && totals.requests > 0 && totals.transactions > 0 && totals.connectionsChurned > 0);
    // A leak of a few KiB per connection or test would double the RSS over the run; allocator noise does not.
    assert.ok(last < first * 2, `server RSS ${first} → ${last}`);
  },
);
