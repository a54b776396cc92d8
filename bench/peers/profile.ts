/**
 * Where the time goes where socktune falls short in bench/peers: each server runs under
 * `node --cpu-prof` while the external Go load generator drives it, and the profile is summed by
 * function (self time). Also prints the process CPU of the server and of the load generator, to
 * show which one a single event loop runs out of first.
 *
 *   npm run bench:profile [-- --seconds 3]
 */
import { goBuild } from './go-build.ts';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../../src/bench/results/environment.ts';
import { formatCount } from '../../src/bench/results/format.ts';
import { processCpuSeconds } from './process-cpu.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, out: { type: 'string' } } });
const seconds = Number(values.seconds);
const outDir = values.out ?? new URL('../results/', import.meta.url).pathname;
const here = (file: string): string => new URL(file, import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'socktune-profile-'));

const goClient = goBuild('go-load-client', work);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self time per function over every thread's profile (node writes one per thread), as a share of all samples. */
function topFunctions(files: string[], count: number): { name: string; share: number }[] {
  const nodes = files.flatMap((file) => (JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] }).nodes);
  const totals = new Map<string, number>();
  let all = 0;
  for (const node of nodes) {
    const hits = node.hitCount ?? 0;
    all += hits;
    const where = node.callFrame.url ? ` ${node.callFrame.url.replace(/^.*\/(src|lib|node:)/, '$1')}:${node.callFrame.lineNumber + 1}` : '';
    const name = `${node.callFrame.functionName || '(anonymous)'}${where}`;
    totals.set(name, (totals.get(name) ?? 0) + hits);
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, hits]) => ({ name, share: hits / all }));
}

function cpuSeconds(pid: number): number {
  const { user, system } = processCpuSeconds(pid);
  return user + system;
}

const SERVERS = [
  { name: 'socktune loop', args: [here('./socktune-echo-server.ts'), 'loop'] },
  { name: 'socktune workers', args: [here('./socktune-echo-server.ts'), 'workers'] },
  { name: 'node:net (write per chunk)', args: [here('./node-echo-server.ts')] },
];

const sections: string[] = [];
const rows: { server: string; rps: number; serverCpuPercent: number }[] = [];
for (const server of SERVERS) {
  const profileDir = join(work, server.name.replace(/\W+/g, '-'));
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profileDir, ...server.args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
  );
  const cpuBefore = cpuSeconds(child.pid!);
  const output = execFileSync(
    goClient,
    ['-port', String(port), '-conns', '10', '-depth', '1', '-size', '1024', '-seconds', String(seconds)],
    { encoding: 'utf8' },
  );
  const cpu = ((cpuSeconds(child.pid!) - cpuBefore) / seconds) * 100;
  const parsed = JSON.parse(output) as { requests: number; seconds: number };
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  const profiles = readdirSync(profileDir).filter((file) => file.endsWith('.cpuprofile'));
  const top = topFunctions(
    profiles.map((file) => join(profileDir, file)),
    12,
  );
  const rps = Math.round(parsed.requests / parsed.seconds);
  rows.push({ server: server.name, rps, serverCpuPercent: Math.round(cpu) });
  sections.push(
    `### ${server.name}: ${formatCount(rps)} req/s, server process CPU ${Math.round(cpu)}% of one core, ${profiles.length} thread profile(s)\n\n| self time | function |\n|---|---|\n${top.map((entry) => `| ${(entry.share * 100).toFixed(1)}% | \`${entry.name}\` |`).join('\n')}\n`,
  );
  process.stderr.write(`${server.name} profiled\n`);
}

const date = new Date().toISOString().slice(0, 10);
const environment = collectEnvironment();
const markdown = `# Profile: socktune under the external Go load generator (${date})

Each server ran under \`node --cpu-prof\` (one profile per thread, summed) while \`go-load-client\` drove
1 KiB requests on 10 connections, depth 1, for ${seconds}s. Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}.
Self time is the share of all threads' samples spent in that function itself; \`(idle)\` is the
event loop waiting in epoll, \`(program)\` native work outside JS (libuv, the kernel's side of
read/write system calls as seen from the thread), \`(garbage collector)\` GC pauses.

${sections.join('\n')}
`;
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `peers-profile-${date}.md`), markdown);
writeFileSync(join(outDir, `peers-profile-${date}.json`), `${JSON.stringify({ date, seconds, environment, rows }, null, 2)}\n`);
process.stdout.write(markdown);
