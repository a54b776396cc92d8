/**
 * iperf3 interop parity on loopback, in one interleaved run: every client × server pairing of
 * stock iperf3 and socktune (stream --iperf3 / server --iperf3), 1 and 4 streams, both
 * directions. The metric is the receiver's rate; ratios are to iperf3 → iperf3.
 *
 *   npm run bench:iperf3-parity [-- --seconds 2 --repetitions 3]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';
import { runIperf3Stream } from '../src/bench/engines/iperf3.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, repetitions: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const PORTS = { iperf3: 5311, socktune: 5312 } as const;
const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;

type Side = keyof typeof PORTS;

async function measure(client: Side, server: Side, streams: number, reverse: boolean): Promise<number> {
  const port = PORTS[server];
  if (client === 'iperf3') {
    const { stdout } = await run('iperf3', [
      '-c',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      String(seconds),
      '-P',
      String(streams),
      '-J',
      ...(reverse ? ['-R'] : []),
    ]);
    return (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  }
  const result = await runIperf3Stream({
    host: '127.0.0.1',
    port,
    durationSec: seconds,
    omitSec: 0,
    writeSize: 128 * 1024,
    parallel: streams,
    direction: reverse ? 'reverse' : 'forward',
    noDelay: false,
    intervalSec: seconds,
  });
  return (result.summary.receiver!.bytes * 8) / result.summary.measuredSeconds;
}

const daemons = [
  spawn('iperf3', ['-s', '-p', String(PORTS.iperf3), '-B', '127.0.0.1'], { stdio: 'ignore' }),
  spawn(process.execPath, [BIN, 'server', '--iperf3', '-p', String(PORTS.socktune)], { stdio: 'ignore' }),
];
await new Promise((resolve) => setTimeout(resolve, 1000));
const pairs: [Side, Side][] = [
  ['iperf3', 'iperf3'],
  ['iperf3', 'socktune'],
  ['socktune', 'iperf3'],
  ['socktune', 'socktune'],
];
const scenarios = [1, 4].flatMap((streams) => [false, true].map((reverse) => ({ streams, reverse })));
const samples = new Map<string, number[]>();
const key = (pair: [Side, Side], scenario: { streams: number; reverse: boolean }): string =>
  `${pair[0]}→${pair[1]}|${scenario.streams}|${scenario.reverse}`;
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const scenario of scenarios) {
      for (const pair of pairs) {
        const bits = await measure(pair[0], pair[1], scenario.streams, scenario.reverse);
        samples.set(key(pair, scenario), [...(samples.get(key(pair, scenario)) ?? []), bits]);
      }
    }
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  for (const daemon of daemons) daemon.kill();
}

const rows = scenarios.flatMap((scenario) => {
  const baseline = median(samples.get(key(['iperf3', 'iperf3'], scenario))!);
  return pairs.map((pair) => {
    const values = samples.get(key(pair, scenario))!;
    return `| ${scenario.streams} | ${scenario.reverse ? 'reverse (-R)' : 'forward'} | ${pair[0]} → ${pair[1]} | ${formatBits(median(values))} | ${formatBits(Math.min(...values))} – ${formatBits(Math.max(...values))} | ${(median(values) / baseline).toFixed(2)}× |`;
  });
});
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# iperf3 parity (${date})

Receiver rate on loopback, ${repetitions} interleaved repetitions of ${seconds}s, median (range); 128 KiB writes.
"socktune" as a client is \`socktune stream --iperf3\`, as a server \`socktune server --iperf3\` (loop model).
Ratios are to iperf3 → iperf3 in the same scenario. Node ${environment.node}, kernel ${environment.kernel},
${environment.cpus} × ${environment.cpuModel}. Client and server share the CPUs.

| streams | direction | client → server | median | range | vs iperf3 → iperf3 |
|---|---|---|---|---|---|
${rows.join('\n')}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/iperf3-parity-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/iperf3-parity-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, samples: Object.fromEntries(samples) }, null, 2),
);
process.stdout.write(markdown);
