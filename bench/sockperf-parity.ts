/**
 * Latency parity with sockperf's own C server: `sockperf pp -m 64` against `sockperf sr` and
 * against `socktune server --sockperf` in each I/O model, interleaved and repeated; plus
 * `sockperf tp -m 64` message rates against both. sockperf's figures are half round trips.
 *
 *   npm run bench:sockperf-parity [-- --seconds 3 --repetitions 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatCount } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';
import { runSockperf, sockperfMessageRate, sockperfPercentile } from './sockperf-client.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, repetitions: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;

interface Server {
  name: string;
  port: number;
  start: () => ChildProcess;
}

const SERVERS: Server[] = [
  {
    name: 'sockperf sr (C)',
    port: 11301,
    start: () => spawn('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', '11301'], { stdio: 'ignore' }),
  },
  ...[
    ['loop', []],
    ['workers', ['--io-model', 'workers']],
    ['thread-per-conn', ['--io-model', 'thread-per-conn']],
    ['thread-per-conn blocking', ['--io-model', 'thread-per-conn', '--blocking']],
  ].map(([name, flags], index) => ({
    name: `socktune --sockperf ${name as string}`,
    port: 11302 + index,
    start: () =>
      spawn(process.execPath, [BIN, 'server', '--sockperf', '-p', String(11302 + index), ...(flags as string[])], { stdio: 'ignore' }),
  })),
];

const percentile = (text: string, p: string): number => sockperfPercentile(text, p) ?? Number.NaN;

const children = SERVERS.map((server) => server.start());
await new Promise((resolve) => setTimeout(resolve, 1000));
const samples = new Map(
  SERVERS.map((server) => [server.name, { p50: [] as number[], p99: [] as number[], p999: [] as number[], tp: [] as number[] }]),
);
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const server of SERVERS) {
      const pp = await runSockperf('pp', server.port, seconds);
      const entry = samples.get(server.name)!;
      entry.p50.push(percentile(pp, '50.000'));
      entry.p99.push(percentile(pp, '99.000'));
      entry.p999.push(percentile(pp, '99.900'));
      const tp = await runSockperf('tp', server.port, seconds);
      entry.tp.push(sockperfMessageRate(tp) ?? Number.NaN);
    }
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  for (const child of children) child.kill();
}

const baseline = samples.get(SERVERS[0]!.name)!;
const rows = SERVERS.map((server) => {
  const entry = samples.get(server.name)!;
  const p50 = median(entry.p50);
  const p99 = median(entry.p99);
  return `| ${server.name} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${median(entry.p999).toFixed(2)} | ${(p50 / median(baseline.p50)).toFixed(2)}× | ${(p99 / median(baseline.p99)).toFixed(2)}× | ${formatCount(median(entry.tp))} | ${(median(entry.tp) / median(baseline.tp)).toFixed(2)}× |`;
});
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# sockperf parity (${date})

\`sockperf pp -m 64\` and \`sockperf tp -m 64\` (sockperf 3.7 client) against sockperf's C server and
socktune's sockperf server in each I/O model; ${repetitions} interleaved repetitions of ${seconds}s, median.
Latency columns are sockperf's own figures (half a round trip, µs); ratios > 1 mean slower than
sockperf's server. Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}.

| server | p50 µs | p99 µs | p99.9 µs | p50 vs C | p99 vs C | tp msg/s | tp vs C |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/sockperf-parity-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/sockperf-parity-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, samples: Object.fromEntries(samples) }, null, 2),
);
process.stdout.write(markdown);
