import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  assertSchema,
  mergeRuns,
  runCli,
  runInProcess,
  serverEvents,
  startServer,
  waitForServerEvents,
  type CliRun,
} from '../../testkit/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'socktune-merge-'));
// The scale tests write tens of megabytes here.
after(() => rmSync(work, { recursive: true, force: true }));

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
          // Intervals of a second: runs on a busy machine may start a few hundred ms apart and still share each one.
          '-t',
          '2',
          '-i',
          '1',
          '-C',
          '2',
          '--size',
          '100',
          '--start-at',
          String(startAt),
          // On a busy machine a client may reach --start-at late: it runs anyway, and the intervals still line up.
          '--start-late-tolerance',
          '600',
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
    const parts = runs.map(
      (run) => JSON.parse(run.stdout) as { startedAt: string; intervals: unknown[]; summary: { requests: number; sentRequests: number } },
    );
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
    // Runs that started within a few hundred ms share every one-second interval; one that a busy machine
    // started later (within the tolerance) fills the slots of its own time instead, as it should.
    const starts = parts.map((part) => Date.parse(part.startedAt));
    if (Math.abs(starts[0]! - starts[1]!) < 500)
      for (const interval of document.intervals) assert.equal(interval.runs, 2, 'runs started together share every interval');
    assert.equal(
      document.intervals.reduce((sum, interval) => sum + interval.runs, 0),
      parts.reduce((sum, part) => sum + part.intervals.length, 0),
      'every interval of every run is in one slot',
    );

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

// Hostile and oversized input. Each case corrupts one field of a real run's document and expects
// SOCKTUNE_ERR_MERGE (exit 2) naming the file and the field. The bounds (MERGE_LIMITS, merge.ts):
//   options.intervalSec 0.001 to 3600 s; intervals[].startSec 0 to 86,400 s; runs started within
//   86,400 s of each other; at most 1,000,000 merged intervals (slots); counts, bytes and rates
//   numbers from 0 to 2^53 - 1; an encoded histogram at most 524,288 characters, inflating to at
//   most 262,144 bytes, in socktune's layout (1 ns to 3600 s, 3 significant digits), no bucket
//   past that range, at most 2^31 - 1 latencies in one bucket; a result file at most 256 MiB.

/** The parts of a result document the hostile cases change; anything else is kept as it came. */
interface Document {
  startedAt: string;
  options: { intervalSec: unknown; [field: string]: unknown };
  intervals: Record<string, unknown>[];
  summary: Record<string, unknown>;
  [field: string]: unknown;
}
let realRuns: Promise<{ rr: Document; stream: Document }> | undefined;

/** One real rr and one real stream result, made once for the tests that corrupt copies of them. */
async function realDocuments(): Promise<{ rr: Document; stream: Document }> {
  realRuns ??= (async () => {
    const server = await startServer(['--json']);
    try {
      const target = ['-c', '127.0.0.1', '-p', String(server.port), '-t', '0.6', '-i', '0.2', '--json'];
      const [rr, stream] = await Promise.all([runCli(['rr', ...target]), runCli(['stream', ...target])]);
      for (const run of [rr, stream]) assert.equal(run.code, 0, run.stderr);
      return { rr: JSON.parse(rr.stdout) as Document, stream: JSON.parse(stream.stdout) as Document };
    } finally {
      await server.stop();
    }
  })();
  return structuredClone(await realRuns);
}

/** Merges `a` (written as run-a.json) with `b` through the CLI's main(), in this process (the binary merges in the tests above). */
async function mergeDocuments(a: Document | string, b: Document | string): Promise<CliRun> {
  const files = [a, b].map((document, index) => {
    const file = join(work, `run-${'ab'[index]}.json`);
    writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
    return file;
  });
  return runInProcess(['merge', ...files, '--json']);
}

function assertRefused(run: CliRun, message: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /^socktune: SOCKTUNE_ERR_MERGE: /);
  assert.match(run.stderr, message);
}

/** ZigZag LEB128, as hdr-histogram-js writes each count (negative: a run of empty buckets). */
function zigzag(value: bigint): number[] {
  let rest = value >= 0n ? value * 2n : -value * 2n - 1n;
  const bytes: number[] = [];
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    bytes.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return bytes;
}

/** An hdr-histogram V2 encoding with any header and counts, as a hostile or broken writer could make it. */
function rawHistogram({
  counts,
  digits = 3,
  lowest = 1n,
  highest = 3_600_000_000_000n,
  payloadBytes,
}: {
  counts: bigint[];
  digits?: number;
  lowest?: bigint;
  highest?: bigint;
  payloadBytes?: number;
}): string {
  const payload = Buffer.from(counts.flatMap(zigzag));
  const header = Buffer.alloc(40);
  header.writeInt32BE(0x1c849313, 0);
  header.writeInt32BE(payloadBytes ?? payload.length, 4);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(digits, 12);
  header.writeBigInt64BE(lowest, 16);
  header.writeBigInt64BE(highest, 24);
  header.writeBigInt64BE(1n, 32);
  return envelope(deflateSync(Buffer.concat([header, payload])));
}

/** The compressed envelope around deflated bytes. */
function envelope(deflated: Buffer): string {
  const head = Buffer.alloc(8);
  head.writeInt32BE(0x1c849314, 0);
  head.writeInt32BE(deflated.length, 4);
  return Buffer.concat([head, deflated]).toString('base64');
}

test('merge: a raw histogram in socktune’s layout is merged (the encoder the hostile cases use)', async () => {
  const { rr } = await realDocuments();
  const b = structuredClone(rr);
  // 5 latencies at bucket 1000 (1000 ns) and 2 at 2047 (2047 ns).
  rr.summary.histogram = rawHistogram({ counts: [-1000n, 5n, -1046n, 2n] });
  const run = await mergeDocuments(rr, b);
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as { summary: { latency: { count: number; minUs: number; maxUs: number } } };
  assert.equal(merged.summary.latency.count, 7 + (b.summary.latency as { count: number }).count);
});

const HOSTILE: [string, (documents: { a: Document; b: Document }) => void, RegExp][] = [
  [
    'a histogram that is not base64',
    ({ a }) => (a.summary.histogram = 'not base64 !!'),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(not base64\)/,
  ],
  [
    'an interval histogram that is not base64',
    ({ a }) => (a.intervals[1]!.histogram = 'not base64 !!'),
    /run-a\.json: intervals\.1\.histogram is not a valid encoded histogram \(not base64\)/,
  ],
  [
    'a histogram cut short (base64 of fewer bytes than its header announces)',
    ({ a }) => (a.intervals[1]!.histogram = (a.intervals[1]!.histogram as string).slice(0, -8)),
    /run-a\.json: intervals\.1\.histogram is not a valid encoded histogram \(cut short: \d+ compressed bytes announced, \d+ present\)/,
  ],
  [
    'a histogram whose counts are cut short (more counts announced than inflated)',
    ({ a }) => (a.summary.histogram = rawHistogram({ counts: [1n], payloadBytes: 2 ** 31 - 1 })),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(cut short: 2147483647 bytes of counts announced, 1 present\)/,
  ],
  [
    'a histogram whose last count stops mid-number',
    ({ a }) => (a.summary.histogram = rawHistogram({ counts: [1000n], payloadBytes: 1 })),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(cut short: its last count is incomplete\)/,
  ],
  [
    'a histogram whose compressed bytes are cut short',
    ({ a }) => (a.summary.histogram = envelope(deflateSync(Buffer.alloc(100)).subarray(0, 6))),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(its compressed bytes are cut short or corrupt: unexpected end of file\)/,
  ],
  [
    'a histogram longer than 524,288 characters',
    ({ a }) => (a.summary.histogram = 'A'.repeat(512 * 1024 + 4)),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(524292 characters, more than the 524288 a socktune histogram can take\)/,
  ],
  [
    'a histogram that inflates past 262,144 bytes (a decompression bomb)',
    ({ a }) => (a.summary.histogram = envelope(deflateSync(Buffer.alloc(16 * 1024 * 1024)))),
    /run-a\.json: summary\.histogram is not a valid encoded histogram \(it inflates to more than 262144 bytes\)/,
  ],
  [
    'a histogram of another layout (an enormous range)',
    ({ a }) => (a.intervals[0]!.histogram = rawHistogram({ counts: [1n], digits: 5, highest: 2n ** 62n })),
    /run-a\.json: intervals\.0\.histogram covers 1 to 4611686018427387904 ns at 5 significant digits, not the 1 to 3600000000000 ns at 3 of every socktune histogram/,
  ],
  [
    'a histogram with a bucket past its range',
    ({ a }) => (a.intervals[0]!.histogram = rawHistogram({ counts: [-(2n ** 40n), 1n] })),
    /run-a\.json: intervals\.0\.histogram holds latencies past the 3600000000000 ns a socktune histogram tracks/,
  ],
  [
    'a histogram bucket counting more than 2^31 - 1 latencies',
    ({ a }) => (a.summary.histogram = rawHistogram({ counts: [-1000n, 2n ** 31n] })),
    /run-a\.json: summary\.histogram counts 2147483648 latencies in one bucket, more than the 2147483647 a run's bucket holds/,
  ],
  [
    'an interval count that is not a number',
    ({ a }) => (a.intervals[1]!.requests = '12'),
    /run-a\.json: intervals\.1\.requests must be a number from 0 to 9007199254740991, got "12"/,
  ],
  [
    'a summary count past 2^53 - 1',
    ({ a }) => (a.summary.requests = 1e300),
    /run-a\.json: summary\.requests must be a number from 0 to 9007199254740991, got 1e\+300/,
  ],
  [
    'an interval that starts before its run',
    ({ a }) => (a.intervals[0]!.startSec = -1),
    /run-a\.json: intervals\.0\.startSec must be a number of seconds from 0 to 86400, got -1/,
  ],
  [
    'an interval start that is not a number (NaN on the way to JSON)',
    ({ a }) => (a.intervals[2]!.startSec = null),
    /run-a\.json: intervals\.2\.startSec must be a number of seconds from 0 to 86400, got null/,
  ],
  [
    'an interval start a day after its run',
    ({ a }) => (a.intervals[0]!.startSec = 1e300),
    /run-a\.json: intervals\.0\.startSec must be a number of seconds from 0 to 86400, got 1e\+300/,
  ],
  [
    'an interval length under 1 ms',
    ({ a, b }) => (a.options.intervalSec = b.options.intervalSec = 1e-9),
    /run-a\.json: options\.intervalSec must be a number of seconds from 0\.001 to 3600, got 1e-9/,
  ],
  [
    'runs started more than a day apart',
    ({ b }) => (b.startedAt = new Date(Date.parse(b.startedAt) + 2 * 86_400_000).toISOString()),
    /run-b\.json: startedAt is "[^"]+", more than 86400 s after .*run-a\.json's "[^"]+": not runs of one test/,
  ],
];

for (const [what, corrupt, message] of HOSTILE) {
  test(`merge refuses ${what}: SOCKTUNE_ERR_MERGE, exit 2, naming the file and the field`, async () => {
    const { rr } = await realDocuments();
    const documents = { a: rr, b: structuredClone(rr) };
    corrupt(documents);
    assertRefused(await mergeDocuments(documents.a, documents.b), message);
  });
}

test('merge refuses a result file over 256 MiB before reading the rest, naming the file', async () => {
  const { rr } = await realDocuments();
  const big = join(work, 'big.json');
  // Sparse: 256 MiB of zero bytes that take no disk.
  writeFileSync(big, '');
  truncateSync(big, 256 * 1024 * 1024 + 1);
  try {
    const small = join(work, 'small.json');
    writeFileSync(small, JSON.stringify(rr));
    assertRefused(await runCli(['merge', small, big]), /big\.json holds more than 268435456 bytes: not socktune output/);
  } finally {
    rmSync(big, { force: true });
  }
});

// Many intervals in one slot (bench/merge-scale.ts times 200,000: linear, where copying the slot on each insert took 20 s for 50,000).
test('merge: 5,000 intervals in one slot (two runs of 2,500 at one time) merge into one interval', { timeout: 120_000 }, async () => {
  const { rr } = await realDocuments();
  const interval: Record<string, unknown> = { ...rr.intervals[0]!, startSec: 0 };
  const line = JSON.stringify(interval);
  const document = JSON.stringify({ ...rr, intervals: [] }).replace('"intervals":[]', `"intervals":[${Array(2_500).fill(line).join(',')}]`);
  const run = await mergeDocuments(document, document);
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as { intervals: { runs: number; requests: number }[] };
  assertSchema(merged);
  assert.equal(merged.intervals.length, 1);
  assert.equal(merged.intervals[0]!.runs, 5_000);
  assert.equal(merged.intervals[0]!.requests, 5_000 * (interval.requests as number));
});
