/**
 * Peer benchmark suite: socktune's echo server in every I/O model (default and tuned) side by
 * side with plain node:net, Go (goroutine per connection), Python asyncio on uvloop and Python
 * thread-per-client, all driven by the same load generator (socktune rr --raw) in one
 * interleaved run, plus an external Go load generator on one workload, plus memory per idle
 * connection. Peers that are not installed are left out and named in the results.
 *
 *   npm run bench:peers [-- --seconds 2 --repetitions 3] [--smoke] [--out DIR]
 */
import { measured } from '../../src/bench/results/histogram.ts';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runConns } from '../../src/bench/engines/conns.ts';
import { collectEnvironment } from '../../src/bench/results/environment.ts';
import { formatBytes, formatCount, formatMicros } from '../../src/bench/results/format.ts';
import { runRr } from '../../src/bench/engines/rr.ts';
import { median } from '../../src/bench/results/stats.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    repetitions: { type: 'string', default: '3' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const smoke = values.smoke === true;
const seconds = smoke ? 0.3 : Number(values.seconds);
const repetitions = smoke ? 1 : Number(values.repetitions);
const outDir = values.out ?? new URL('../results/', import.meta.url).pathname;
const here = (file: string): string => new URL(file, import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'socktune-peers-'));

interface Peer {
  name: string;
  command: string;
  args: string[];
  /** Idle connections for the memory test (thread-per-conn holds a thread per connection). */
  idleConnections: number;
}

const IDLE = smoke ? 100 : 10_000;
const socktunePeer = (label: string, args: string[], idleConnections = IDLE): Peer => ({
  name: `socktune ${label}`,
  command: process.execPath,
  args: [here('./socktune-echo-server.ts'), ...args],
  idleConnections,
});
const peers: Peer[] = [
  socktunePeer('loop', ['loop']),
  socktunePeer('loop tuned', ['loop', 'tuned']),
  socktunePeer('workers', ['workers']),
  socktunePeer('workers tuned', ['workers', 'tuned']),
  // Held connections past maxThreads (128) wait unserved: the memory row measures the threads.
  socktunePeer('thread-per-conn', ['thread-per-conn'], smoke ? 10 : 1000),
  socktunePeer('thread-per-conn blocking', ['thread-per-conn', 'blocking'], smoke ? 10 : 1000),
  { name: 'node:net (write per chunk)', command: process.execPath, args: [here('./node-echo-server.ts')], idleConnections: IDLE },
];
const missing: string[] = [];
function goBuild(source: string, output: string): string | undefined {
  const result = spawnSync('go', ['build', '-o', join(work, output), here(source)], {
    // Go's own build cache (under $HOME) is kept between runs; a fresh one in the work folder only where there is no home.
    env: {
      ...process.env,
      ...(process.env.HOME || process.env.XDG_CACHE_HOME ? {} : { GOCACHE: join(work, 'gocache') }),
      GO111MODULE: 'off',
    },
    stdio: 'ignore',
  });
  return result.status === 0 ? join(work, output) : undefined;
}
const goServer = goBuild('./go-echo-server.go', 'go-echo-server');
const goClient = goBuild('./go-load-client.go', 'go-load-client');
if (goServer) peers.push({ name: 'Go (goroutine per conn)', command: goServer, args: [], idleConnections: IDLE });
else missing.push('Go (install golang-go)');
if (spawnSync('/usr/bin/python3', ['-c', 'import uvloop']).status === 0)
  peers.push({
    name: 'Python asyncio + uvloop',
    command: '/usr/bin/python3',
    args: [here('./uvloop-echo-server.py')],
    idleConnections: IDLE,
  });
else missing.push('Python uvloop (install python3-uvloop)');
if (spawnSync('python3', ['--version']).status === 0) {
  peers.push({
    name: 'Python thread per client',
    command: 'python3',
    args: [new URL('../../testkit/fixtures/echo_threads.py', import.meta.url).pathname, '3600'],
    idleConnections: smoke ? IDLE : 1000,
  });
} else missing.push('Python (install python3)');

interface Running {
  peer: Peer;
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

function start(peer: Peer): Promise<Running> {
  const child = spawn(peer.command, peer.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${peer.name} did not start`)), 20_000);
    child.stdout.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve({ peer, child, port: Number(chunk.toString().trim()), stderr: () => stderr });
    });
  });
}

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((row) => row.startsWith('VmRSS:'));
  return Number(/\d+/.exec(line ?? '')?.[0] ?? 0) * 1024;
}

const WORKLOADS = smoke
  ? [{ name: '64 B × 2 conns', size: 64, connections: 2, depth: 1 }]
  : [
      { size: 64, connections: 100 },
      { size: 1024, connections: 10 },
      { size: 64 * 1024, connections: 10 },
      { size: 1024, connections: 1000 },
    ].flatMap((w) => [1, 10].map((depth) => ({ ...w, depth, name: `${formatBytes(w.size)} × ${w.connections} conns, depth ${depth}` })));
const GO_WORKLOAD = WORKLOADS[smoke ? 0 : 2]!;

const running = await Promise.all(peers.map(start));
const results: { workload: string; server: string; rps: number[]; p99Us: number[]; saturated: number }[] = [];
/** Servers that stopped answering, with why (their last stderr lines): left out from then on. */
const failures: { server: string; workload: string; error: string; stderr: string }[] = [];
const alive = (server: Running): boolean => !failures.some((failure) => failure.server === server.peer.name);
const goResults: { server: string; rps: number[]; p99Us: number[] }[] = [];
const memory: { server: string; connections: number; rssBytesPerConnection: number }[] = [];
try {
  for (const workload of WORKLOADS) {
    const rows = running.map((server) => ({
      workload: workload.name,
      server: server.peer.name,
      rps: [] as number[],
      p99Us: [] as number[],
      saturated: 0,
    }));
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const [index, server] of running.entries()) {
        if (!alive(server)) continue;
        try {
          const result = await runRr({
            target: { host: '127.0.0.1', port: server.port },
            raw: true,
            durationSec: seconds,
            omitSec: smoke ? 0 : 0.3,
            size: workload.size,
            connections: workload.connections,
            depth: workload.depth,
            client: { noDelay: true },
            server: {},
            intervalSec: seconds,
          });
          rows[index]!.rps.push(result.summary.requestsPerSecond);
          rows[index]!.p99Us.push(measured(result.summary.latency.p99Us, workload.name));
          rows[index]!.saturated += Number(result.clientSaturated);
        } catch (error) {
          failures.push({ server: server.peer.name, workload: workload.name, error: (error as Error).message, stderr: server.stderr() });
        }
      }
    }
    results.push(...rows.filter((row) => row.rps.length > 0));
    process.stderr.write(`${workload.name} done\n`);
  }
  if (goClient) {
    for (const server of running) goResults.push({ server: server.peer.name, rps: [], p99Us: [] });
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const [index, server] of running.entries()) {
        if (!alive(server)) continue;
        const output = execFileSync(
          goClient,
          [
            '-port',
            String(server.port),
            '-conns',
            String(GO_WORKLOAD.connections),
            '-depth',
            String(GO_WORKLOAD.depth),
            '-size',
            String(GO_WORKLOAD.size),
            '-seconds',
            String(seconds),
          ],
          { encoding: 'utf8' },
        );
        const parsed = JSON.parse(output) as { requests: number; seconds: number; p99_us: number };
        goResults[index]!.rps.push(Math.round(parsed.requests / parsed.seconds));
        goResults[index]!.p99Us.push(parsed.p99_us);
      }
    }
  }
  for (const server of running.filter(alive)) {
    const before = rssOf(server.child.pid!);
    let during = before;
    await runConns({
      target: { host: '127.0.0.1', port: server.port },
      raw: true,
      count: server.peer.idleConnections,
      holdSec: smoke ? 0.3 : 1,
      sourceAddresses: [],
      concurrency: 64,
      openTimeoutSec: 60,
      client: {},
      server: {},
      // Sampled as soon as all are open and again a moment later, while they are held.
      onProgress: ({ opened }) => {
        if (opened !== server.peer.idleConnections) return;
        during = Math.max(during, rssOf(server.child.pid!));
        setTimeout(() => (during = Math.max(during, rssOf(server.child.pid!))), 300);
      },
    });
    memory.push({
      server: server.peer.name,
      connections: server.peer.idleConnections,
      rssBytesPerConnection: Math.round((during - before) / server.peer.idleConnections),
    });
  }
} finally {
  for (const server of running) server.child.stdin!.end();
}

const node = (rows: { server: string; rps: number[] }[]): number =>
  median(rows.find((row) => row.server.startsWith('node:net'))?.rps ?? [Number.NaN]);
const go = (rows: { server: string; rps: number[] }[]): number =>
  median(rows.find((row) => row.server.startsWith('Go'))?.rps ?? [Number.NaN]);
const ratio = (value: number, base: number): string => (Number.isFinite(base) ? `${(value / base).toFixed(2)}×` : 'n/a');
const sections = WORKLOADS.map((workload) => {
  const rows = results.filter((row) => row.workload === workload.name);
  const lines = rows.map(
    (row) =>
      `| ${row.server} | ${formatCount(median(row.rps))} | ${formatCount(Math.min(...row.rps))}–${formatCount(Math.max(...row.rps))} | ${formatMicros(median(row.p99Us))} | ${ratio(median(row.rps), node(rows))} | ${ratio(median(row.rps), go(rows))} | ${row.saturated}/${repetitions} |`,
  );
  return `### ${workload.name}\n\n| server | req/s | range | p99 | vs node:net | vs Go | client saturated |\n|---|---|---|---|---|---|---|\n${lines.join('\n')}\n`;
});
const goSection = goResults.every((row) => row.rps.length === 0)
  ? 'Go load generator not built (golang-go missing).\n'
  : `| server | req/s | p99 | vs node:net | vs Go |\n|---|---|---|---|---|\n${goResults
      .filter((row) => row.rps.length > 0)
      .map(
        (row) =>
          `| ${row.server} | ${formatCount(median(row.rps))} | ${formatMicros(median(row.p99Us))} | ${ratio(median(row.rps), node(goResults))} | ${ratio(median(row.rps), go(goResults))} |`,
      )
      .join('\n')}\n`;
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# Peer benchmark: echo servers side by side (${date}${smoke ? ', smoke run' : ''})

Every server echoes on loopback; the same closed-loop load generator (\`socktune rr --raw\`) drives them
all, interleaved (one run of each server per repetition), ${repetitions} repetition(s) of ${seconds}s, median.
"tuned" = 256 KiB socket buffers. socktune's thread-per-conn runs at most 128 threads (each a V8
isolate, about 20 MB); with more connections than that, the rest wait for a free thread. Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel};
client and servers share the CPUs, and a load generator saturating its one core is counted per row.
${missing.length > 0 ? `Not installed, left out: ${missing.join(', ')}.\n` : ''}${failures.map((failure) => `**${failure.server} stopped answering** during ${failure.workload} (${failure.error}) and was left out from then on. Its last output: \`${failure.stderr.trim().split('\n').slice(-3).join(' / ') || '(none)'}\`\n`).join('')}
## Request/response, socktune's client

${sections.join('\n')}
## The same servers under an external Go load generator (${GO_WORKLOAD.name})

${goSection}
## Memory per idle connection (server RSS while holding them)

| server | connections held | RSS per connection |
|---|---|---|
${memory.map((row) => `| ${row.server} | ${row.connections} | ${formatBytes(row.rssBytesPerConnection)} |`).join('\n')}

The difference of the server's RSS before and after opening the idle connections, over their
number: a server whose heap the garbage collector shrinks meanwhile can show less than it holds.
Where socktune falls short and why (CPU profiles): \`npm run bench:profile\`, peers-profile-<date>.md.
`;
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `peers-${date}.md`), markdown);
writeFileSync(
  join(outDir, `peers-${date}.json`),
  JSON.stringify({ environment, smoke, seconds, repetitions, missing, failures, results, goResults, memory }, null, 2),
);
process.stdout.write(markdown);
