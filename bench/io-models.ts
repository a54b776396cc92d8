/**
 * Loopback echo: the three I/O models (and blocking thread-per-conn) × buffer sizes unset/8K/256K,
 * as ratios to `loop` with kernel-default buffers measured in the same run. Trials are interleaved
 * (every config once per repetition) and the median of the repetitions is reported.
 *
 *   npm run bench:io-models [-- --seconds 2 --repetitions 3]
 */
import { measured } from '../src/bench/results/histogram.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { LocalServer } from '../src/bench/servers/control/local-server.ts';
import { runRr } from '../src/bench/engines/rr.ts';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatCount, formatMicros } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';
import type { TestServerSettings } from '../src/bench/control/control-protocol.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, repetitions: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);

const MODELS: { name: string; server: TestServerSettings }[] = [
  { name: 'loop', server: { ioModel: 'loop' } },
  { name: 'workers', server: { ioModel: 'workers' } },
  { name: 'thread-per-conn', server: { ioModel: 'thread-per-conn' } },
  { name: 'thread-per-conn blocking', server: { ioModel: 'thread-per-conn', blocking: true } },
];
const BUFFERS: (number | undefined)[] = [undefined, 8 * 1024, 256 * 1024];
const WORKLOADS = [
  { name: '1 KiB × 10 conns', size: 1024, connections: 10 },
  { name: '64 KiB × 10 conns', size: 64 * 1024, connections: 10 },
];

interface Sample {
  rps: number;
  p99Us: number;
  saturated: boolean;
}

const server = await LocalServer.start();
const rows: {
  workload: string;
  model: string;
  buffer: string;
  rps: number;
  rpsSpread: string;
  p99Us: number;
  ratio: number;
  saturatedRuns: number;
}[] = [];
try {
  for (const workload of WORKLOADS) {
    const configs = MODELS.flatMap((model) => BUFFERS.map((buffer) => ({ model, buffer })));
    const samples = new Map(configs.map((config) => [config, [] as Sample[]]));
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const config of configs) {
        const sizes = config.buffer === undefined ? {} : { sendBufferSize: config.buffer, receiveBufferSize: config.buffer };
        const result = await runRr({
          target: server.target,
          durationSec: seconds,
          omitSec: 0.5,
          size: workload.size,
          connections: workload.connections,
          depth: 1,
          client: { ...sizes, noDelay: true },
          server: { ...config.model.server, ...sizes, noDelay: true },
          intervalSec: seconds,
        });
        samples.get(config)!.push({
          rps: result.summary.requestsPerSecond,
          p99Us: measured(result.summary.latency.p99Us, workload.name),
          saturated: result.clientSaturated,
        });
        process.stderr.write(
          `${workload.name} ${config.model.name} ${config.buffer ?? 'auto'}: ${result.summary.requestsPerSecond} req/s\n`,
        );
      }
    }
    const baseline = median(samples.get(configs[0]!)!.map((s) => s.rps));
    for (const config of configs) {
      const runs = samples.get(config)!;
      const rps = median(runs.map((s) => s.rps));
      rows.push({
        workload: workload.name,
        model: config.model.name,
        buffer: config.buffer === undefined ? 'auto' : `${config.buffer / 1024}K`,
        rps,
        rpsSpread: `${Math.min(...runs.map((s) => s.rps))}–${Math.max(...runs.map((s) => s.rps))}`,
        p99Us: median(runs.map((s) => s.p99Us)),
        ratio: rps / baseline,
        saturatedRuns: runs.filter((s) => s.saturated).length,
      });
    }
  }
} finally {
  await server.stop();
}

const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const table = [
  '| workload | server model | buffers | req/s (median) | range | p99 | vs loop/auto | client saturated runs |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.workload} | ${r.model} | ${r.buffer} | ${formatCount(r.rps)} | ${r.rpsSpread} | ${formatMicros(r.p99Us)} | ${r.ratio.toFixed(2)}× | ${r.saturatedRuns}/${repetitions} |`,
  ),
].join('\n');
const markdown = `# I/O models × buffer sizes, loopback echo (${date})

Closed-loop \`socktune rr\` (depth 1) against a \`socktune server\` in a separate process, ${seconds}s per
trial after 0.5s warm-up, ${repetitions} interleaved repetitions, median. Ratios are to \`loop\` with
kernel-default buffers in the same run. Client and server share the machine's CPUs.

Node ${environment.node}, ${environment.platform}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel},
rmem_max ${environment.sysctl['net.core.rmem_max']}, tcp_rmem ${environment.sysctl['net.ipv4.tcp_rmem']}.

${table}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/io-models-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/io-models-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, rows }, null, 2),
);
process.stdout.write(markdown);
