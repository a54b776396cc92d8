/**
 * The stock iperf3 client against iperf3's own server and against `socktune server --iperf3`, in
 * the four modes iperf3 users run (forward, -R, -P 4, --bidir), interleaved, medians; pinned
 * (server on CPU 1, client on CPU 0) and unpinned. The metric is what the client reports received
 * (both directions with --bidir) and the server's CPU per GiB, from iperf3's own figures.
 *
 *   npm run bench:iperf3-server [-- --seconds 3 --repetitions 5]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, repetitions: { type: 'string', default: '5' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;
const MODES = { forward: [], '-R': ['-R'], '-P 4': ['-P', '4'], '--bidir': ['--bidir'] } as const;
const SERVERS = ['iperf3 -s', 'socktune server --iperf3'] as const;
const PINNINGS = ['pinned', 'unpinned'] as const;
const PORTS: Record<(typeof PINNINGS)[number], Record<(typeof SERVERS)[number], number>> = {
  pinned: { 'iperf3 -s': 5331, 'socktune server --iperf3': 5332 },
  unpinned: { 'iperf3 -s': 5333, 'socktune server --iperf3': 5334 },
};

interface Sample {
  bitsPerSecond: number;
  serverCpuPerGiB: number;
}

async function measure(port: number, mode: readonly string[], pinned: boolean): Promise<Sample> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J', ...mode];
  const { stdout } = pinned ? await run('taskset', ['-c', '0', 'iperf3', ...args]) : await run('iperf3', args);
  const end = (
    JSON.parse(stdout) as {
      end: {
        sum_received: { bits_per_second: number };
        sum_bidir_reverse?: { bits_per_second: number };
        cpu_utilization_percent: { remote_total: number };
      };
    }
  ).end;
  const bitsPerSecond = end.sum_received.bits_per_second + (end.sum_bidir_reverse?.bits_per_second ?? 0);
  return { bitsPerSecond, serverCpuPerGiB: end.cpu_utilization_percent.remote_total / 100 / (bitsPerSecond / 8 / 2 ** 30) };
}

const daemon = (pinned: boolean, command: string, args: string[]) =>
  spawn(pinned ? 'taskset' : command, pinned ? ['-c', '1', command, ...args] : args, { stdio: 'ignore' });
const daemons = PINNINGS.flatMap((pinning) => [
  daemon(pinning === 'pinned', 'iperf3', ['-s', '-p', String(PORTS[pinning]['iperf3 -s']), '-B', '127.0.0.1']),
  daemon(pinning === 'pinned', process.execPath, [BIN, 'server', '--iperf3', '-p', String(PORTS[pinning]['socktune server --iperf3'])]),
]);
await new Promise((resolve) => setTimeout(resolve, 1500));
const samples = new Map<string, Sample[]>();
const key = (pinning: string, mode: string, server: string): string => `${pinning}|${mode}|${server}`;
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const pinning of PINNINGS)
      for (const [mode, args] of Object.entries(MODES))
        for (const server of SERVERS) {
          const sample = await measure(PORTS[pinning][server], args, pinning === 'pinned');
          samples.set(key(pinning, mode, server), [...(samples.get(key(pinning, mode, server)) ?? []), sample]);
        }
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  for (const child of daemons) child.kill();
}

const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const tables = PINNINGS.map((pinning) => {
  const rows = Object.keys(MODES).flatMap((mode) => {
    const baseline = median(samples.get(key(pinning, mode, 'iperf3 -s'))!.map((s) => s.bitsPerSecond));
    return SERVERS.map((server) => {
      const runs = samples.get(key(pinning, mode, server))!;
      const rates = runs.map((s) => s.bitsPerSecond);
      return (
        `| ${mode} | ${server} | ${formatBits(median(rates))} | ${formatBits(Math.min(...rates))} – ${formatBits(Math.max(...rates))} | ` +
        `${(median(rates) / baseline).toFixed(2)}× | ${(median(runs.map((s) => s.serverCpuPerGiB)) * 1000).toFixed(0)} ms |`
      );
    });
  });
  return `## ${pinning === 'pinned' ? 'Pinned: server on CPU 1, client on CPU 0' : 'Unpinned: both share the CPUs'}

| mode | server | received, median | range | vs iperf3 -s | server CPU per GiB |
|---|---|---|---|---|---|
${rows.join('\n')}`;
});
const markdown = `# Stock iperf3 client: socktune server --iperf3 against iperf3 -s (${date})

${repetitions} interleaved repetitions of ${seconds} s, medians, on loopback; the stock client's own figures (received, both
directions with --bidir; the server's CPU as the server reported it to the client). socktune's server moves TCP test data
on threads (sendfile to send, a recv loop to receive) as far as its thread quota (the CPUs it may run on) allows.
Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}.

${tables.join('\n\n')}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/iperf3-server-parity-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/iperf3-server-parity-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, samples: Object.fromEntries(samples) }, null, 2),
);
process.stdout.write(markdown);
