/**
 * Small messages near the wire (issue "Faster where it counts", target 2), in one interleaved run:
 *   - `socktune msg --size 64` one way: its byte rate as a share of `socktune stream`'s (same build, same run)
 *   - `socktune msg --echo --size 64`: messages/s of this build vs a baseline build (another checkout)
 *   - the floor under any echo at a fixed depth: sockperf's C client and server ping-pong (`sockperf pp -m 64`),
 *     whose round trip bounds messages/s at depth D to D / RTT whatever either end does
 * Each build runs its own server and client binaries, so both ends of the change are measured.
 *
 *   npm run bench:small-messages -- --baseline /path/to/built/older/checkout [--seconds 3 --repetitions 3]
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { median } from '../src/bench/results/stats.ts';
import { runSockperf, sockperfPercentile } from './sockperf-client.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    repetitions: { type: 'string', default: '3' },
    out: { type: 'string', default: 'small-messages' },
  },
});
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const builds: Record<string, string> = { current: new URL('..', import.meta.url).pathname };
if (values.baseline) builds.baseline = values.baseline;

interface Server {
  port: number;
  stop: () => Promise<void>;
}

function startServer(root: string): Promise<Server> {
  const child = spawn(process.execPath, [`${root}/bin/socktune.js`, 'server', '-p', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server of ${root} did not start`)), 15_000);
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((candidate) => candidate.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      const { address } = JSON.parse(line) as { address: { port: number } };
      resolve({
        port: address.port,
        stop: () =>
          new Promise((done) => {
            child.once('exit', () => done());
            child.kill('SIGINT');
          }),
      });
    });
  });
}

interface Measured {
  bitsPerSecond: number;
  messagesPerSecond: number | null;
  clientCpu: number;
  serverCpu: number | null;
  saturated: boolean;
}

async function client(root: string, port: number, args: string[]): Promise<Measured> {
  const child = spawn(
    process.execPath,
    [`${root}/bin/socktune.js`, ...args, '-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '--omit', '0.3', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${args.join(' ')} (${root}) exited ${String(code)}`);
  const result = JSON.parse(text) as {
    summary: { bitsPerSecond: number; messagesPerSecond?: number; serverCpuPercent: number | null };
    selfCheck: { cpuPercent: number };
    clientSaturated: boolean;
  };
  return {
    bitsPerSecond: result.summary.bitsPerSecond,
    messagesPerSecond: result.summary.messagesPerSecond ?? null,
    clientCpu: result.selfCheck.cpuPercent,
    serverCpu: result.summary.serverCpuPercent,
    saturated: result.clientSaturated,
  };
}

const ECHO_DEPTH = 64;
const SOCKPERF_PORT = 11197;

/** sockperf's own round trip, C to C, in microseconds (it reports half round trips). */
async function sockperfRoundTripUs(): Promise<number> {
  const half = sockperfPercentile(await runSockperf('pp', SOCKPERF_PORT, seconds), '50.000');
  if (half === undefined) throw new Error('no median in sockperf output');
  return 2 * half;
}

const WORKLOADS: Record<string, string[]> = {
  stream: ['stream'],
  'msg one-way 64 B': ['msg', '--size', '64'],
  'msg echo 64 B': ['msg', '--echo', '--size', '64', '--depth', String(ECHO_DEPTH)],
};

const sockperf = spawn('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', String(SOCKPERF_PORT)], { stdio: 'ignore' });
const roundTrips: number[] = [];
const servers = Object.fromEntries(
  await Promise.all(Object.entries(builds).map(async ([name, root]) => [name, await startServer(root)] as const)),
);
const samples: Record<string, Measured[]> = {};
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    roundTrips.push(await sockperfRoundTripUs());
    for (const [workload, args] of Object.entries(WORKLOADS)) {
      for (const [name, root] of Object.entries(builds)) {
        const key = `${name} | ${workload}`;
        (samples[key] ??= []).push(await client(root, servers[name]!.port, args));
        process.stderr.write(`${repetition + 1}/${repetitions} ${key}\n`);
      }
    }
  }
} finally {
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  sockperf.kill();
}

const med = (key: string, pick: (m: Measured) => number | null): number => median(samples[key]!.map((m) => pick(m) ?? Number.NaN));
const spread = (key: string, pick: (m: Measured) => number | null): string => {
  const all = samples[key]!.map((m) => pick(m) ?? Number.NaN);
  return `${Math.min(...all).toPrecision(3)}–${Math.max(...all).toPrecision(3)}`;
};
const rows = Object.keys(samples).map((key) => {
  const saturated = samples[key]!.filter((m) => m.saturated).length;
  return `| ${key} | ${(med(key, (m) => m.bitsPerSecond) / 1e9).toFixed(2)} Gbit/s (${spread(key, (m) => m.bitsPerSecond / 1e9)}) | ${
    key.includes('msg') ? `${(med(key, (m) => m.messagesPerSecond) / 1e6).toFixed(2)} M/s` : '–'
  } | ${med(key, (m) => m.clientCpu).toFixed(0)} % | ${med(key, (m) => m.serverCpu).toFixed(0)} % | ${saturated}/${samples[key]!.length} |`;
});
const ratios: string[] = [];
for (const name of Object.keys(builds)) {
  const oneWay = med(`${name} | msg one-way 64 B`, (m) => m.bitsPerSecond);
  const stream = med(`${name} | stream`, (m) => m.bitsPerSecond);
  ratios.push(`- ${name}: msg one-way 64 B byte rate / stream = **${(oneWay / stream).toFixed(3)}**`);
}
if (builds.baseline) {
  const echo = (name: string): number => med(`${name} | msg echo 64 B`, (m) => m.messagesPerSecond);
  const oneWay = (name: string): number => med(`${name} | msg one-way 64 B`, (m) => m.messagesPerSecond);
  ratios.push(`- msg echo 64 B, current / baseline = **${(echo('current') / echo('baseline')).toFixed(2)}×**`);
  ratios.push(`- msg one-way 64 B, current / baseline = **${(oneWay('current') / oneWay('baseline')).toFixed(2)}×**`);
}
const roundTrip = median(roundTrips);
ratios.push(
  `- the floor: sockperf C↔C round trip (64 B) ${roundTrip.toFixed(1)} µs (median of ${roundTrips.map((value) => value.toFixed(1)).join(', ')}), so an echo with ${ECHO_DEPTH} messages in flight cannot pass ${(ECHO_DEPTH / roundTrip).toFixed(2)} M msg/s on this machine; current msg echo reaches **${(med('current | msg echo 64 B', (m) => m.messagesPerSecond) / 1e6 / (ECHO_DEPTH / roundTrip)).toFixed(2)}** of it`,
);
const environment = collectEnvironment();
const report = [
  `# Small messages near the wire — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} CPUs (${environment.cpuModel}); loopback; ${repetitions} interleaved repetitions of ${seconds} s (0.3 s warm-up omitted), median (range).`,
  `Builds: ${Object.entries(builds)
    .map(([name, root]) => `${name} = ${root}`)
    .join('; ')}. Each build runs its own server and client.`,
  '',
  '| build · workload | byte rate | messages | client CPU | server CPU | client saturated |',
  '|---|---|---|---|---|---|',
  ...rows,
  '',
  ...ratios,
  '',
].join('\n');
process.stdout.write(report);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const stamp = new Date().toISOString().slice(0, 10);
await writeFile(new URL(`./results/${values.out}-${stamp}.md`, import.meta.url), report);
await writeFile(
  new URL(`./results/${values.out}-${stamp}.json`, import.meta.url),
  `${JSON.stringify({ environment, builds, samples }, null, 2)}\n`,
);
