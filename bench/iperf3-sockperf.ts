/**
 * socktune next to the tools network engineers already trust, in one run on loopback:
 *   - throughput: `iperf3 -c` → `iperf3 -s`   vs   `socktune stream` → `socktune server`
 *   - latency:    `sockperf pp` → `sockperf sr` vs `socktune rr` → `socktune server` (64 B, 1 connection)
 * Each pair is interleaved (A B A B ...), repeated, and the median reported with its range. sockperf
 * prints half the round trip as "latency"; the table shows round trips for both.
 *
 *   npm run bench:iperf3-sockperf [-- --seconds 3 --repetitions 3]
 */
import { measured } from '../src/bench/results/histogram.ts';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits, formatMicros } from '../src/bench/results/format.ts';
import { LocalServer } from '../src/bench/servers/control/local-server.ts';
import { runRr } from '../src/bench/engines/rr.ts';
import { runStream } from '../src/bench/engines/stream.ts';
import { median } from '../src/bench/results/stats.ts';
import { runSockperf, sockperfPercentile } from './sockperf-client.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, repetitions: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const IPERF3_PORT = 5299;
const SOCKPERF_PORT = 11199;

function startDaemon(command: string, args: string[]): ChildProcess {
  return spawn(command, args, { stdio: 'ignore' });
}

async function iperf3Throughput(): Promise<number> {
  const { stdout } = await run('iperf3', ['-c', '127.0.0.1', '-p', String(IPERF3_PORT), '-t', String(seconds), '-J']);
  return (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
}

/** sockperf pp percentiles, converted from its half-round-trip "latency" to round trips. */
async function sockperfRoundTrips(): Promise<{ p50Us: number; p99Us: number; p999Us: number }> {
  const text = await runSockperf('pp', SOCKPERF_PORT, seconds);
  const percentile = (p: string): number => {
    const half = sockperfPercentile(text, p);
    if (half === undefined) throw new Error(`no percentile ${p} in sockperf output`);
    return half * 2;
  };
  return { p50Us: percentile('50.000'), p99Us: percentile('99.000'), p999Us: percentile('99.900') };
}

const iperf3 = startDaemon('iperf3', ['-s', '-p', String(IPERF3_PORT), '-B', '127.0.0.1']);
const sockperf = startDaemon('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', String(SOCKPERF_PORT)]);
const socktune = await LocalServer.start();
await new Promise((resolve) => setTimeout(resolve, 500));
const samples = {
  iperf3: [] as number[],
  socktuneStream: [] as number[],
  sockperf: [] as { p50Us: number; p99Us: number; p999Us: number }[],
  socktuneRr: [] as { p50Us: number; p99Us: number; p999Us: number }[],
};
let saturated = 0;
let bytesAgreed = 0;
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    samples.iperf3.push(await iperf3Throughput());
    const stream = await runStream({
      target: socktune.target,
      durationSec: seconds,
      omitSec: 0,
      writeSize: 128 * 1024,
      parallel: 1,
      direction: 'forward',
      client: {},
      server: {},
      verify: false,
      intervalSec: seconds,
    });
    samples.socktuneStream.push(stream.summary.bitsPerSecond);
    if (stream.summary.sender?.bytes === stream.summary.receiver?.bytes) bytesAgreed++;
    samples.sockperf.push(await sockperfRoundTrips());
    const rr = await runRr({
      target: socktune.target,
      durationSec: seconds,
      omitSec: 0.4,
      size: 64,
      connections: 1,
      depth: 1,
      client: {},
      server: {},
      intervalSec: seconds,
    });
    const { p50Us, p99Us, p999Us } = rr.summary.latency;
    samples.socktuneRr.push({ p50Us: measured(p50Us, 'rr p50'), p99Us: measured(p99Us, 'rr p99'), p999Us: measured(p999Us, 'rr p99.9') });
    saturated += Number(stream.clientSaturated) + Number(rr.clientSaturated);
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  iperf3.kill();
  sockperf.kill();
  await socktune.stop();
}

const range = (values: number[], format: (v: number) => string): string =>
  `${format(Math.min(...values))} – ${format(Math.max(...values))}`;
const iperfMedian = median(samples.iperf3);
const streamMedian = median(samples.socktuneStream);
const latencyRow = (name: string, runs: { p50Us: number; p99Us: number; p999Us: number }[], baseline: { p50Us: number; p99Us: number }) => {
  const p50 = median(runs.map((r) => r.p50Us));
  const p99 = median(runs.map((r) => r.p99Us));
  return `| ${name} | ${formatMicros(p50)} | ${formatMicros(p99)} | ${formatMicros(median(runs.map((r) => r.p999Us)))} | ${(p50 / baseline.p50Us).toFixed(2)}× | ${(p99 / baseline.p99Us).toFixed(2)}× |`;
};
const sockperfBaseline = { p50Us: median(samples.sockperf.map((r) => r.p50Us)), p99Us: median(samples.sockperf.map((r) => r.p99Us)) };
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# socktune vs iperf3 and sockperf on loopback (${date})

${repetitions} interleaved repetitions of ${seconds}s each, median (range). Node ${environment.node}, kernel
${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}. Client and server share the machine's CPUs;
socktune's client reported saturation in ${saturated} of ${repetitions * 2} runs.

## Throughput, 1 connection, 128 KiB writes

iperf3: its receiver's rate (\`sum_received\`). socktune: the client's send rate over the measured
phase; the server received exactly the bytes the client sent in ${bytesAgreed} of ${repetitions} runs.

| tool | median | range | vs iperf3 |
|---|---|---|---|
| iperf3 3.12 → iperf3 -s | ${formatBits(iperfMedian)} | ${range(samples.iperf3, formatBits)} | 1.00× |
| socktune stream → socktune server (loop) | ${formatBits(streamMedian)} | ${range(samples.socktuneStream, formatBits)} | ${(streamMedian / iperfMedian).toFixed(2)}× |

## Round-trip latency, 64 B, 1 connection, ping-pong

Lower is better; ratios > 1 mean socktune is slower. sockperf's half-round-trip figures are doubled.

| tool | p50 | p99 | p99.9 | p50 vs sockperf | p99 vs sockperf |
|---|---|---|---|---|---|
${latencyRow('sockperf pp → sockperf sr', samples.sockperf, sockperfBaseline)}
${latencyRow('socktune rr → socktune server (loop)', samples.socktuneRr, sockperfBaseline)}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/iperf3-sockperf-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/iperf3-sockperf-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, samples }, null, 2),
);
process.stdout.write(markdown);
