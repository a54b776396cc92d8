/**
 * Issue "At the floor", the load-generator row: `socktune rr --raw` against the Go load generator
 * (bench/peers/go-load-client.go), both driving the same Go goroutine-per-connection echo server
 * with the same three workloads, interleaved, median of the repetitions. Reported: requests/s and
 * the generator's CPU per request (user + system).
 *
 * --pin: the server on CPU 1, the generator on CPU 0 (one core each: socktune then runs one
 * client thread, the Go client one P). Without it both share both CPUs, and socktune spreads its
 * connections over its default client threads (the CPUs).
 *
 * The generator's CPU: Go's is the whole process's (from its parent shell's cutime/cstime once it
 * was reaped: its start is a few ms); socktune's is its own self-check over the traffic phase
 * (selfCheck.cpuPercent × measured seconds), which leaves out Node's start and the connects.
 *
 *   npm run bench:load-generator [-- --seconds 3 --repetitions 3 --pin]
 */
import { goBuild } from './peers/go-build.ts';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatCount } from '../src/bench/results/format.ts';
import type { RrResult } from '../src/bench/results/result.ts';
import { median } from '../src/bench/results/stats.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    repetitions: { type: 'string', default: '3' },
    pin: { type: 'boolean', default: false },
  },
});
const pinned = values.pin === true;
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const here = (file: string): string => new URL(file, import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'socktune-load-generator-'));
const BIN = here('../bin/socktune.js');
/** Clock ticks per second of /proc's CPU times. */
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

const WORKLOADS = [
  { name: '64 B × 100 conns, depth 10', size: 64, conns: 100, depth: 10 },
  { name: '1 KiB × 10 conns', size: 1024, conns: 10, depth: 1 },
  { name: '64 KiB × 10 conns', size: 64 * 1024, conns: 10, depth: 1 },
];
type Workload = (typeof WORKLOADS)[number];

const onCpu = (cpu: number, command: string, args: string[]): [string, string[]] =>
  pinned ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];

interface Sample {
  rps: number;
  cpuUsPerRequest: number;
}

/**
 * The Go generator under a shell that prints its own /proc stat once the generator was reaped:
 * its children's user and system ticks are the generator's whole CPU time.
 */
function goLoad(client: string, port: number, workload: Workload, duration: number): Sample {
  const [command, args] = onCpu(0, client, [
    ...['-port', String(port), '-conns', String(workload.conns), '-depth', String(workload.depth)],
    ...['-size', String(workload.size), '-seconds', String(duration)],
  ]);
  const output = execFileSync('sh', ['-c', '"$@"; cat /proc/$$/stat', 'sh', command, ...args], { encoding: 'utf8' });
  const [json, stat] = output.trim().split('\n');
  const fields = stat!.split(') ')[1]!.split(' ');
  // Fields 16 and 17 of stat (cutime, cstime), counted from the state (field 3) here.
  const cpuSeconds = (Number(fields[13]) + Number(fields[14])) / TICKS;
  const result = JSON.parse(json!) as { requests: number; seconds: number };
  return { rps: result.requests / result.seconds, cpuUsPerRequest: (cpuSeconds * 1e6) / result.requests };
}

function socktuneLoad(port: number, workload: Workload, duration: number, threads?: number): Sample {
  const [command, args] = onCpu(0, process.execPath, [
    BIN,
    'rr',
    '--raw',
    '-c',
    `127.0.0.1:${port}`,
    ...['--size', String(workload.size), '-C', String(workload.conns), '--depth', String(workload.depth)],
    ...['-t', String(duration), '--json'],
    ...(threads === undefined ? [] : ['--client-threads', String(threads)]),
  ]);
  const result = JSON.parse(execFileSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as RrResult;
  const { requests, measuredSeconds } = result.summary;
  const cpuSeconds = (result.selfCheck.cpuPercent / 100) * measuredSeconds;
  return { rps: requests / measuredSeconds, cpuUsPerRequest: (cpuSeconds * 1e6) / requests };
}

const client = goBuild('go-load-client', work);
const server = spawn(...onCpu(1, goBuild('go-echo-server', work), []), { stdio: ['pipe', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) =>
  server.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
);
type Generator = (workload: Workload, duration: number) => Sample;
const GENERATORS: Record<string, Generator> = {
  'socktune rr --raw': (workload, duration) => socktuneLoad(port, workload, duration),
  // Unpinned, the default is a thread a CPU: the event loop alone beside it shows what the threads bring.
  ...(pinned ? {} : { 'socktune rr --raw --client-threads 1': (workload, duration) => socktuneLoad(port, workload, duration, 1) }),
  'Go load generator': (workload, duration) => goLoad(client, port, workload, duration),
};
const samples = new Map<string, Sample[]>();
try {
  // Untimed first: the server has served each workload from each generator once.
  for (const workload of WORKLOADS) for (const run of Object.values(GENERATORS)) run(workload, 1);
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const workload of WORKLOADS) {
      for (const [name, run] of Object.entries(GENERATORS)) {
        const key = `${workload.name}|${name}`;
        samples.set(key, [...(samples.get(key) ?? []), run(workload, seconds)]);
      }
      process.stderr.write(`${repetition + 1}/${repetitions} ${workload.name}\n`);
    }
  }
} finally {
  server.stdin.end();
  rmSync(work, { recursive: true, force: true });
}

const of = (workload: Workload, name: string, pick: (sample: Sample) => number): number[] =>
  samples.get(`${workload.name}|${name}`)!.map(pick);
const sections = WORKLOADS.map((workload) => {
  const goRps = median(of(workload, 'Go load generator', (sample) => sample.rps));
  const goCpu = median(of(workload, 'Go load generator', (sample) => sample.cpuUsPerRequest));
  const rows = Object.keys(GENERATORS).map((name) => {
    const rps = of(workload, name, (sample) => sample.rps);
    const cpu = median(of(workload, name, (sample) => sample.cpuUsPerRequest));
    return (
      `| ${name} | ${formatCount(median(rps))} (${formatCount(Math.min(...rps))}–${formatCount(Math.max(...rps))}) | ` +
      `${(median(rps) / goRps).toFixed(2)}× | ${cpu.toFixed(1)} | ${(cpu / goCpu).toFixed(2)}× |`
    );
  });
  return [
    `## ${workload.name}`,
    '',
    '| load generator | req/s (range) | vs Go | generator CPU µs/request | vs Go |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
});
const environment = collectEnvironment();
const stamp = new Date().toISOString().slice(0, 10);
const report = [
  `# socktune rr --raw vs the Go load generator — ${stamp}`,
  '',
  `Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} CPUs (${environment.cpuModel}); loopback; one Go ` +
    `goroutine-per-connection echo server (bench/peers/go-echo-server.go) for both generators; ` +
    `${pinned ? 'server pinned to CPU 1, generators to CPU 0 (socktune: one client thread); ' : 'no pinning (socktune: its default client threads, one a CPU); '}` +
    `each generator first ran each workload for an untimed second; ${repetitions} interleaved repetitions of ${seconds} s, median (range). ` +
    "Generator CPU per request: Go's whole process, socktune's self-check over its traffic phase (see bench/load-generator.ts).",
  '',
  ...sections,
].join('\n');
process.stdout.write(report);
const name = `load-generator${pinned ? '-pinned' : ''}-${stamp}`;
writeFileSync(here(`results/${name}.md`), report);
writeFileSync(here(`results/${name}.json`), `${JSON.stringify({ environment, samples: Object.fromEntries(samples) }, null, 2)}\n`);
