/**
 * Is `tune --quick`'s pick as good as the full sweep's best? For each workload (stream, rr) on
 * loopback: `tune --quick` and the full grid run interleaved (quick, full, quick, full, …), then
 * each quick pick and the full sweep's best are measured head to head, interleaved, and the ratio
 * of their medians is reported with both confidence intervals. Target (benchmark, not test): ≥ 0.95.
 *
 *   npm run bench:tune-validation [-- --rounds 2 --budget 40 --repetitions 6 --seconds 1]
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { currentAffinity, formatCpuList, pinProcess } from '../src/core/affinity.ts';
import { runRr } from '../src/bench/engines/rr.ts';
import { runStream } from '../src/bench/engines/stream.ts';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits, formatCount } from '../src/bench/results/format.ts';
import { describeInterval, median, medianInterval } from '../src/bench/results/stats.ts';
import { LocalServer } from '../src/bench/servers/control/local-server.ts';
import { socketOptionsOf } from '../src/bench/tune/recommend.ts';
import { configLabel, type TuneConfig } from '../src/bench/tune/space.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    budget: { type: 'string', default: '40' },
    repetitions: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '1' },
    workloads: { type: 'string', default: 'stream,rr' },
  },
});
const rounds = Number(values.rounds);
const repetitions = Number(values.repetitions);
const seconds = Number(values.seconds);
const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;
type Workload = 'stream' | 'rr';
const WORKLOADS = values.workloads.split(',') as Workload[];

interface TuneDocument {
  scenarios: { ranking: { config: TuneConfig; label: string }[]; recommendation: { config: TuneConfig; label: string } | null }[];
  durationSec: number;
}

async function tune(workload: Workload, quick: boolean): Promise<TuneDocument> {
  const mode = quick ? ['--quick'] : ['--budget', `${values.budget}s`];
  const { stdout } = await run(process.execPath, [BIN, 'tune', '--workload', workload, ...mode, '--json', '--no-report'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as TuneDocument;
}

/** One measurement of a configuration against the embedded server: what tune's trials measure, longer. */
async function measure(server: LocalServer, workload: Workload, config: TuneConfig): Promise<number> {
  const socket = socketOptionsOf(config);
  const common = {
    target: server.target,
    durationSec: seconds,
    omitSec: 0.25,
    client: socket,
    server: { ioModel: config.ioModel, ...socket },
    intervalSec: seconds,
  };
  if (workload === 'stream')
    return (await runStream({ ...common, writeSize: 128 * 1024, parallel: 1, direction: 'forward', verify: false })).summary.bitsPerSecond;
  return (await runRr({ ...common, size: 64, connections: 10, depth: config.depth })).summary.requestsPerSecond;
}

const rows: string[] = [];
const raw: Record<string, unknown>[] = [];
for (const workload of WORKLOADS) {
  const picks: { quick: TuneDocument; full: TuneDocument }[] = [];
  for (let round = 0; round < rounds; round++) {
    const quick = await tune(workload, true);
    const full = await tune(workload, false);
    picks.push({ quick, full });
    process.stderr.write(`${workload} round ${round + 1}: quick ${quick.durationSec}s, full ${full.durationSec}s\n`);
  }
  // Head to head, with the client and the server on CPUs of their own, as tune measures.
  const server = await LocalServer.start();
  const cpus = currentAffinity();
  const clientCpus = cpus.slice(0, Math.floor(cpus.length / 2));
  if (clientCpus.length > 0) {
    pinProcess(clientCpus);
    pinProcess(cpus.slice(clientCpus.length), server.pid);
  }
  try {
    for (const [index, { quick, full }] of picks.entries()) {
      const quickPick = quick.scenarios[0]!.recommendation!.config;
      const fullBest = full.scenarios[0]!.ranking[0]!.config;
      const samples = { quick: [] as number[], full: [] as number[] };
      for (let repetition = 0; repetition < repetitions; repetition++) {
        samples.quick.push(await measure(server, workload, quickPick));
        samples.full.push(await measure(server, workload, fullBest));
      }
      const ratio = median(samples.quick) / median(samples.full);
      const format = (value: number): string => (workload === 'stream' ? formatBits(value) : `${formatCount(value)} req/s`);
      rows.push(
        `| ${workload} | ${index + 1} | ${configLabel(quickPick, workload)} | ${format(median(samples.quick))} (${describeInterval(medianInterval(samples.quick), format)}) | ${configLabel(fullBest, workload)} | ${format(median(samples.full))} (${describeInterval(medianInterval(samples.full), format)}) | **${ratio.toFixed(2)}** |`,
      );
      raw.push({ workload, round: index + 1, quickPick, fullBest, samples, ratio });
      process.stderr.write(`${workload} round ${index + 1}: quick pick / full best = ${ratio.toFixed(2)}\n`);
    }
  } finally {
    await server.stop();
    pinProcess(cpus);
  }
}

const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# tune --quick against the full sweep (${date})

Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}; loopback, the embedded
server and the client pinned to a CPU each (tune's default here: ${formatCpuList(currentAffinity())} split in two).
Per workload, ${rounds} rounds of \`tune --quick\` and \`tune --budget ${values.budget}s\` (the full grid) interleaved; then each
quick pick (its recommendation) and the full sweep's best (its first-ranked configuration) measured head to head,
interleaved, ${repetitions} runs of ${seconds} s each (stream: 128 KiB writes, 1 connection; rr: 64 B, 10 connections).
Ratio: the quick pick's median over the full sweep's best median; target ≥ 0.95. Intervals: the median's
confidence interval from order statistics (the coverage it reaches with ${repetitions} runs).

| workload | round | quick pick | its median (interval) | full sweep's best | its median (interval) | ratio |
|---|---|---|---|---|---|---|
${rows.join('\n')}

Generated by \`npm run bench:tune-validation\`; raw samples in the JSON file beside this one.
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/tune-validation-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/tune-validation-${date}.json`, import.meta.url),
  `${JSON.stringify({ environment, rounds, repetitions, seconds, raw }, null, 2)}\n`,
);
process.stdout.write(markdown);
