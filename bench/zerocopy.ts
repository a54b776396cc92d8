/**
 * stream -Z (sendfile from the page cache, on a thread) against stream's writes from a buffer, on
 * loopback, server on CPU 1 and client on CPU 0, interleaved repetitions, medians; stock iperf3
 * with and without -Z beside them as the reference; then `tune --quick` with each sender, counting
 * the stream trials it flags "client saturated".
 *
 *   npm run bench:zerocopy [-- --seconds 3 --repetitions 5 --tunes 2]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    repetitions: { type: 'string', default: '5' },
    tunes: { type: 'string', default: '2' },
  },
});
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const tunes = Number(values.tunes);
const PORTS = { iperf3: 5321, socktune: 5322 } as const;
const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;
const CLIENT_CPU = '0';
const SERVER_CPU = '1';

interface Sample {
  bitsPerSecond: number;
  /** Percent of one core, over the test. */
  clientCpu: number;
  /** The client's busiest thread (socktune only). */
  busiestThread: number | null;
  serverCpu: number;
  saturated: boolean | null;
}

async function socktune(zeroCopy: boolean): Promise<Sample> {
  const args = [BIN, 'stream', '-c', '127.0.0.1', '-p', String(PORTS.socktune), '-t', String(seconds), '-i', String(seconds), '--json'];
  const { stdout } = await run('taskset', ['-c', CLIENT_CPU, process.execPath, ...args, ...(zeroCopy ? ['-Z'] : [])]);
  const document = JSON.parse(stdout) as {
    summary: { bitsPerSecond: number; serverCpuPercent: number };
    selfCheck: { cpuPercent: number; busiestThreadCpuPercent?: number; clientSaturated: boolean };
  };
  return {
    bitsPerSecond: document.summary.bitsPerSecond,
    clientCpu: document.selfCheck.cpuPercent,
    busiestThread: document.selfCheck.busiestThreadCpuPercent ?? null,
    serverCpu: document.summary.serverCpuPercent,
    saturated: document.selfCheck.clientSaturated,
  };
}

async function iperf3(zeroCopy: boolean): Promise<Sample> {
  const args = ['-c', '127.0.0.1', '-p', String(PORTS.iperf3), '-t', String(seconds), '-J', ...(zeroCopy ? ['-Z'] : [])];
  const { stdout } = await run('taskset', ['-c', CLIENT_CPU, 'iperf3', ...args]);
  const end = (
    JSON.parse(stdout) as {
      end: { sum_received: { bits_per_second: number }; cpu_utilization_percent: { host_total: number; remote_total: number } };
    }
  ).end;
  return {
    bitsPerSecond: end.sum_received.bits_per_second,
    clientCpu: end.cpu_utilization_percent.host_total,
    busiestThread: null,
    serverCpu: end.cpu_utilization_percent.remote_total,
    saturated: null,
  };
}

/** tune --quick on loopback with one sender: its stream trials, and how many it flagged client-saturated. */
async function tuneQuick(sender: 'sendfile' | 'write'): Promise<{ trials: number; saturated: number; best: number }> {
  const { stdout } = await run(process.execPath, [BIN, 'tune', '--quick', '--sender', sender, '--json', '--no-report'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const result = JSON.parse(stdout) as { scenarios: { trials: { clientSaturated: boolean }[]; ranking: { median: number }[] }[] };
  const trials = result.scenarios.flatMap((scenario) => scenario.trials);
  return {
    trials: trials.length,
    saturated: trials.filter((trial) => trial.clientSaturated).length,
    best: result.scenarios[0]!.ranking[0]!.median,
  };
}

const daemons = [
  spawn('taskset', ['-c', SERVER_CPU, 'iperf3', '-s', '-p', String(PORTS.iperf3), '-B', '127.0.0.1'], { stdio: 'ignore' }),
  spawn('taskset', ['-c', SERVER_CPU, process.execPath, BIN, 'server', '-p', String(PORTS.socktune)], { stdio: 'ignore' }),
];
await new Promise((resolve) => setTimeout(resolve, 1500));
const environment = collectEnvironment();
const rows = {
  'socktune stream (writes from a buffer)': [] as Sample[],
  'socktune stream -Z (sendfile, a thread)': [] as Sample[],
  'iperf3 -c (write)': [] as Sample[],
  'iperf3 -c -Z (sendfile)': [] as Sample[],
};
const tuned = { write: [] as Awaited<ReturnType<typeof tuneQuick>>[], sendfile: [] as Awaited<ReturnType<typeof tuneQuick>>[] };
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    rows['socktune stream (writes from a buffer)'].push(await socktune(false));
    rows['socktune stream -Z (sendfile, a thread)'].push(await socktune(true));
    rows['iperf3 -c (write)'].push(await iperf3(false));
    rows['iperf3 -c -Z (sendfile)'].push(await iperf3(true));
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  for (const daemon of daemons) daemon.kill();
}
// tune starts its own server (pinned apart from the client): nothing else runs meanwhile.
for (let round = 0; round < tunes; round++) {
  tuned.write.push(await tuneQuick('write'));
  tuned.sendfile.push(await tuneQuick('sendfile'));
  process.stderr.write(`tune round ${round + 1}/${tunes} done\n`);
}

const mid = (samples: Sample[], field: keyof Sample): number => median(samples.map((sample) => Number(sample[field])));
/** Client CPU-seconds per GiB moved: the sender's cost, whatever the rate it reached. */
const cpuPerGiB = (samples: Sample[], field: 'clientCpu' | 'serverCpu'): number =>
  median(samples.map((sample) => sample[field] / 100 / (sample.bitsPerSecond / 8 / 2 ** 30)));
const date = new Date().toISOString().slice(0, 10);
const table = Object.entries(rows).map(([name, samples]) => {
  const busiest = samples[0]!.busiestThread === null ? 'n/a' : `${mid(samples, 'busiestThread').toFixed(0)}%`;
  const saturated = samples[0]!.saturated === null ? 'n/a' : `${samples.filter((sample) => sample.saturated).length} of ${samples.length}`;
  return (
    `| ${name} | ${formatBits(mid(samples, 'bitsPerSecond'))} | ${mid(samples, 'clientCpu').toFixed(0)}% | ${busiest} | ` +
    `${mid(samples, 'serverCpu').toFixed(0)}% | ${(cpuPerGiB(samples, 'clientCpu') * 1000).toFixed(0)} ms | ` +
    `${(cpuPerGiB(samples, 'serverCpu') * 1000).toFixed(0)} ms | ${saturated} |`
  );
});
const tuneRow = (sender: 'write' | 'sendfile'): string =>
  `| ${sender} | ${tuned[sender].map((t) => `${t.saturated} of ${t.trials}`).join(', ')} | ` +
  `${tuned[sender].map((t) => formatBits(t.best)).join(', ')} |`;
const markdown = `# stream -Z: a zero-copy sender on loopback (${date})

${repetitions} interleaved repetitions of ${seconds} s, medians. Server on CPU ${SERVER_CPU}, client on CPU ${CLIENT_CPU}
(\`taskset\`), one connection, 128 KiB per write or sendfile call. Node ${environment.node}, kernel ${environment.kernel},
${environment.cpus} × ${environment.cpuModel}. CPU is percent of one core over the test (socktune: its self-check and the
server's own figure; iperf3: its \`cpu_utilization_percent\`); "per GiB" is CPU time per GiB received.

| client → server | rate | client CPU | busiest client thread | server CPU | client CPU per GiB | server CPU per GiB | client saturated |
|---|---|---|---|---|---|---|---|
${table.join('\n')}

## tune --quick on loopback: stream trials flagged "client saturated"

Each run \`socktune tune --quick --sender S\` (its embedded server on one half of the CPUs, the client on the other),
write and sendfile runs alternating.

| stream sender | flagged trials, per run | best configuration's rate, per run |
|---|---|---|
${tuneRow('write')}
${tuneRow('sendfile')}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/zerocopy-${date}.md`, import.meta.url), markdown);
await writeFile(new URL(`./results/zerocopy-${date}.json`, import.meta.url), JSON.stringify({ environment, rows, tuned }, null, 2));
process.stdout.write(markdown);
