/**
 * The echo workloads of issue "Faster where it counts" (target 3) under the external Go load
 * generator only (a client that saturates less than socktune's own): socktune's echo server in
 * every I/O model vs Go (goroutine per connection), a C epoll server (built with cc where there is one)
 * and Python thread per client, interleaved,
 * median of the repetitions, as ratios to Go. Also the server's CPU time over the run.
 *
 * thread-per-conn servers start their pool for the largest workload's 100 clients at listen
 * (minThreads), as docs/library.md advises: a thread start is a V8 isolate's, tens of ms. With
 * --pin the servers run on CPU 1 and the load generator on CPU 0 (taskset), so neither takes the
 * other's core.
 *
 * --servers loop,io-uring,Go runs only the servers whose names contain one of those
 * (bench/io-uring/README.md measures the io-uring model so).
 *
 *   npm run bench:go-load [-- --seconds 3 --repetitions 5 --pin] [--servers A,B]
 */
import { goBuild } from './go-build.ts';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../../src/bench/results/environment.ts';
import { formatCount } from '../../src/bench/results/format.ts';
import { median } from '../../src/bench/results/stats.ts';
import { processCpuSeconds } from './process-cpu.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    repetitions: { type: 'string', default: '5' },
    pin: { type: 'boolean', default: false },
    /** Only the servers whose names contain one of these, comma-separated (default: every one). */
    servers: { type: 'string' },
  },
});
const pinned = values.pin === true;
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const here = (file: string): string => new URL(file, import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'socktune-go-load-'));

const client = goBuild('go-load-client', work);

/** The single-threaded C epoll echo server, where a C compiler is present (none is needed otherwise). */
function cEchoServer(): [string, string, string[]][] {
  const output = join(work, 'c-echo-server');
  const built = spawnSync('cc', ['-O2', '-o', output, here('./c-echo-server.c')], { stdio: 'inherit' });
  if (built.status !== 0) {
    process.stderr.write('no C compiler (cc): the C epoll server is left out\n');
    return [];
  }
  return [['C epoll (one thread)', output, []]];
}
const WORKLOADS = [
  { name: '64 B × 100 conns, depth 10', size: 64, conns: 100, depth: 10 },
  { name: '1 KiB × 10 conns', size: 1024, conns: 10, depth: 1 },
  { name: '64 KiB × 10 conns', size: 64 * 1024, conns: 10, depth: 1 },
];
/** thread-per-conn servers start a thread for each client of the largest workload at listen. */
const POOL = `min-threads=${Math.max(...WORKLOADS.map((workload) => workload.conns))}`;
const ALL_SERVERS: [string, string, string[]][] = [
  ['socktune loop', process.execPath, [here('./socktune-echo-server.ts'), 'loop']],
  ['socktune workers', process.execPath, [here('./socktune-echo-server.ts'), 'workers']],
  ['socktune thread-per-conn', process.execPath, [here('./socktune-echo-server.ts'), 'thread-per-conn', POOL]],
  ['socktune thread-per-conn blocking', process.execPath, [here('./socktune-echo-server.ts'), 'thread-per-conn', 'blocking', POOL]],
  ['socktune io-uring', process.execPath, [here('./socktune-echo-server.ts'), 'io-uring']],
  ['Go (goroutine per conn)', goBuild('go-echo-server', work), []],
  ...cEchoServer(),
  ['node:net (write per chunk)', process.execPath, [here('./node-echo-server.ts')]],
  ['Python thread per client', 'python3', [here('../../testkit/fixtures/echo_threads.py'), '3600']],
];
const chosen = values.servers?.split(',');
const SERVERS = ALL_SERVERS.filter(([name]) => chosen === undefined || chosen.some((part) => name.includes(part)));

interface Running {
  name: string;
  child: ChildProcess;
  port: number;
}

/** A command on CPU `cpu` when --pin is given. */
const onCpu = (cpu: number, command: string, args: string[]): [string, string[]] =>
  pinned ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];

function start([name, command, args]: [string, string, string[]]): Promise<Running> {
  // Python prints a traceback for every connection the load generator resets at its end.
  const child = spawn(...onCpu(1, command, args), { stdio: ['pipe', 'pipe', command === 'python3' ? 'ignore' : 'inherit'] });
  return new Promise((resolve, reject) => {
    // Two thread-per-conn servers start a thread (a V8 isolate) per client of the largest workload before they listen.
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 120_000);
    child.stdout.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve({ name, child, port: Number(chunk.toString().trim()) });
    });
  });
}

const running = await Promise.all(SERVERS.map(start));
const samples = new Map<string, { rps: number[]; p99: number[]; cpu: number[]; userUs: number[]; systemUs: number[] }>();
const load = (server: Running, workload: (typeof WORKLOADS)[number], duration: number): string =>
  execFileSync(
    ...onCpu(0, client, [
      '-port',
      String(server.port),
      '-conns',
      String(workload.conns),
      '-depth',
      String(workload.depth),
      '-size',
      String(workload.size),
      '-seconds',
      String(duration),
    ]),
    { encoding: 'utf8' },
  );
try {
  // Untimed first, so that each server has served each workload once (JIT, buffers).
  for (const workload of WORKLOADS) for (const server of running) load(server, workload, 1);
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const workload of WORKLOADS) {
      for (const server of running) {
        const key = `${workload.name}|${server.name}`;
        const before = processCpuSeconds(server.child.pid!);
        const output = load(server, workload, seconds);
        const parsed = JSON.parse(output) as { requests: number; seconds: number; p99_us: number };
        const after = processCpuSeconds(server.child.pid!);
        const entry = samples.get(key) ?? { rps: [], p99: [], cpu: [], userUs: [], systemUs: [] };
        entry.rps.push(parsed.requests / parsed.seconds);
        entry.p99.push(parsed.p99_us);
        entry.cpu.push((100 * (after.user + after.system - before.user - before.system)) / parsed.seconds);
        entry.userUs.push((1e6 * (after.user - before.user)) / parsed.requests);
        entry.systemUs.push((1e6 * (after.system - before.system)) / parsed.requests);
        samples.set(key, entry);
      }
      process.stderr.write(`${repetition + 1}/${repetitions} ${workload.name}\n`);
    }
  }
} finally {
  for (const server of running) server.child.stdin!.end();
}

const sections = WORKLOADS.map((workload) => {
  const go = median(samples.get(`${workload.name}|Go (goroutine per conn)`)!.rps);
  const rows = running.map(({ name }) => {
    const entry = samples.get(`${workload.name}|${name}`)!;
    const rps = median(entry.rps);
    return `| ${name} | ${formatCount(rps)} (${formatCount(Math.min(...entry.rps))}–${formatCount(Math.max(...entry.rps))}) | ${(rps / go).toFixed(2)}× | ${median(entry.p99).toFixed(0)} | ${median(entry.cpu).toFixed(0)} % | ${median(entry.userUs).toFixed(1)} + ${median(entry.systemUs).toFixed(1)} |`;
  });
  const best = running
    .filter(({ name }) => name.startsWith('socktune'))
    .map(({ name }) => [name, median(samples.get(`${workload.name}|${name}`)!.rps)] as const)
    .sort((a, b) => b[1] - a[1])[0]!;
  return [
    `## ${workload.name}`,
    '',
    '| server | req/s (range) | vs Go | p99 µs | server CPU | server CPU µs/request, user + kernel |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Best socktune model: ${best[0]}, **${(best[1] / go).toFixed(2)}× Go**.`,
    '',
  ].join('\n');
});
const environment = collectEnvironment();
const stamp = new Date().toISOString().slice(0, 10);
const report = [
  `# Echo servers under the external Go load generator — ${stamp}`,
  '',
  `Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} CPUs (${environment.cpuModel}); loopback; the Go client (bench/peers/go-load-client.go) for every server; ${pinned ? 'servers pinned to CPU 1, the load generator to CPU 0; ' : 'no pinning: servers and load generator share both CPUs; '}each server first warmed with one untimed second of each workload; thread-per-conn servers start their threads at listen (${POOL}); ${repetitions} interleaved repetitions of ${seconds} s, median (range). Server CPU: user + system time of the server process over the run, in % of one core, and per request (medians of each).`,
  '',
  ...sections,
].join('\n');
process.stdout.write(report);
// A subset of the servers is written apart: the full comparison of the day stays as it was.
const subset = chosen === undefined ? '' : `-${chosen.map((part) => part.toLowerCase().replace(/[^a-z0-9]+/g, '')).join('-')}`;
const name = `go-load${pinned ? '-pinned' : ''}${subset}-${stamp}`;
writeFileSync(here(`../results/${name}.md`), report);
writeFileSync(here(`../results/${name}.json`), `${JSON.stringify({ environment, samples: Object.fromEntries(samples) }, null, 2)}\n`);
