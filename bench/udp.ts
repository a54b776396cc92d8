/**
 * UDP next to the stock tools, in one run on loopback, each pair interleaved and repeated, median (range):
 *   - datagrams/s, 1400 B, as fast as the sender goes (-b 0), one stream:
 *     iperf3 -u → iperf3 -s   vs   socktune stream -u → socktune server (one datagram per system call, and batched:
 *     UDP GSO/GRO)   vs   iperf3 -u → socktune server iperf3
 *   - UDP ping-pong, 64 B: sockperf pp → sockperf sr   vs   sockperf pp → socktune server sockperf (same client)
 *   - loss against SO_RCVBUF at a fixed rate, with the receiving socket's own drop counter beside the loss
 *
 *   npm run bench:udp [-- --seconds 3 --repetitions 3 --rate 1G]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { TestServerSettings } from '../src/bench/control/control-protocol.ts';
import { runUdpStream } from '../src/bench/engines/udp-stream.ts';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBytes, formatCount, formatMicros } from '../src/bench/results/format.ts';
import { median } from '../src/bench/results/stats.ts';
import { LocalServer } from '../src/bench/servers/control/local-server.ts';
import { DEFAULT_UDP_BUFFER_SIZES } from '../src/bench/tune/udp-buffer.ts';
import { parseBitRate } from '../src/cli/units.ts';
import { sockperfPercentile } from './sockperf-client.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    repetitions: { type: 'string', default: '3' },
    rate: { type: 'string', default: '1G' },
  },
});
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const demoRate = parseBitRate(values.rate, '--rate');
const DATAGRAM = 1400;
const IPERF3_PORT = 5297;
const SOCKTUNE_IPERF3_PORT = 5298;
const SOCKPERF_PORT = 11197;
const SOCKTUNE_SOCKPERF_PORT = 11198;
const SOCKTUNE_SOCKPERF_THREADS_PORT = 11196;
const BIN = fileURLToPath(new URL('../bin/socktune.js', import.meta.url));

function daemon(command: string, args: string[]): ChildProcess {
  return spawn(command, args, { stdio: 'ignore' });
}

interface Rate {
  sentPerSecond: number;
  receivedPerSecond: number;
  lostPercent: number;
}

/** A stock iperf3 -u client at -b 0 against `port`: what it sent and what the server counted, per second. */
async function iperf3Udp(port: number, cpu?: number): Promise<Rate> {
  const { stdout } = await run(
    ...pinned(cpu, 'iperf3', ['-u', '-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-b', '0', '-l', String(DATAGRAM), '-J']),
  );
  const sum = (JSON.parse(stdout) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } }).end.sum;
  return {
    sentPerSecond: sum.packets / sum.seconds,
    receivedPerSecond: (sum.packets - sum.lost_packets) / sum.seconds,
    lostPercent: (sum.lost_packets / sum.packets) * 100,
  };
}

async function socktuneUdp(
  server: LocalServer,
  segmented: boolean,
  saturated: { count: number },
  serverSettings: TestServerSettings = {},
): Promise<Rate> {
  const result = await runUdpStream({
    batch: segmented ? undefined : 1,
    target: server.target,
    durationSec: seconds,
    intervalSec: seconds,
    direction: 'forward',
    datagramBytes: DATAGRAM,
    bitsPerSecond: 0,
    parallel: 1,
    client: {},
    server: serverSettings,
  });
  saturated.count += Number(result.clientSaturated);
  const { udp, measuredSeconds } = result.summary;
  return { sentPerSecond: udp!.sent / measuredSeconds, receivedPerSecond: udp!.received / measuredSeconds, lostPercent: udp!.lostPercent };
}

/** sockperf pp over UDP, 64 B: round trips (its half-round-trip figures doubled). */
async function sockperfPingPong(port: number): Promise<{ p50Us: number; p99Us: number }> {
  const { stdout, stderr } = await run('sockperf', ['pp', '-i', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-m', '64']);
  const text = `${stdout}\n${stderr}`;
  const roundTrip = (percentile: string): number => {
    const half = sockperfPercentile(text, percentile);
    if (half === undefined) throw new Error(`no percentile ${percentile} in sockperf output`);
    return half * 2;
  };
  return { p50Us: roundTrip('50.000'), p99Us: roundTrip('99.000') };
}

/** `command args` on CPU `cpu` (taskset), or anywhere. */
function pinned(cpu: number | undefined, command: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [command, args] : ['taskset', ['-c', String(cpu), command, ...args]];
}

/** socktune's CLI client, one datagram per system call, on CPU `cpu` against a server on `port`. */
async function socktuneUdpCli(port: number, cpu: number): Promise<Rate> {
  const args = [BIN, 'stream', '-u', '-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-b', '0', '-l', String(DATAGRAM)];
  const { stdout } = await run(
    ...pinned(cpu, process.execPath, [...args, '--no-batch', '--io-model', 'workers', '--workers', '1', '--json']),
  );
  const { udp, measuredSeconds } = (
    JSON.parse(stdout) as { summary: { udp: { sent: number; received: number; lostPercent: number }; measuredSeconds: number } }
  ).summary;
  return { sentPerSecond: udp.sent / measuredSeconds, receivedPerSecond: udp.received / measuredSeconds, lostPercent: udp.lostPercent };
}

/** Servers on CPU 1 and clients on CPU 0: each side has a core of its own, as on two hosts. */
const PINNED_IPERF3_PORT = 5296;
const PINNED_SOCKTUNE_PORT = 5295;
const daemons = [
  daemon('iperf3', ['-s', '-p', String(IPERF3_PORT), '-B', '127.0.0.1']),
  daemon(...pinned(1, 'iperf3', ['-s', '-p', String(PINNED_IPERF3_PORT), '-B', '127.0.0.1'])),
  daemon(...pinned(1, process.execPath, [BIN, 'server', '-p', String(PINNED_SOCKTUNE_PORT)])),
  daemon(process.execPath, [BIN, 'server', 'iperf3', '-p', String(SOCKTUNE_IPERF3_PORT)]),
  daemon('sockperf', ['sr', '-i', '127.0.0.1', '-p', String(SOCKPERF_PORT)]),
  // UDP replies capped far above what a ping-pong sends: the cap is not what is measured.
  daemon(process.execPath, [BIN, 'server', 'sockperf', '-p', String(SOCKTUNE_SOCKPERF_PORT), '--max-rate', '10G']),
  daemon(process.execPath, [
    BIN,
    'server',
    'sockperf',
    '-p',
    String(SOCKTUNE_SOCKPERF_THREADS_PORT),
    '--io-model',
    'workers',
    '--workers',
    '1',
    '--max-rate',
    '10G',
  ]),
];
const socktune = await LocalServer.start();
await new Promise((resolve) => setTimeout(resolve, 1000));
const rates = {
  iperf3: [] as Rate[],
  socktunePlain: [] as Rate[],
  socktunePlainThreads: [] as Rate[],
  socktuneBatched: [] as Rate[],
  iperf3ToSocktune: [] as Rate[],
  pinnedIperf3: [] as Rate[],
  pinnedSocktune: [] as Rate[],
};
const pingPong = {
  sockperf: [] as { p50Us: number; p99Us: number }[],
  socktune: [] as { p50Us: number; p99Us: number }[],
  socktuneThread: [] as { p50Us: number; p99Us: number }[],
};
const saturated = { count: 0 };
const demo: { asked: number; effective: number; sent: number; lost: number; drops: number | null }[] = [];
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    rates.iperf3.push(await iperf3Udp(IPERF3_PORT));
    rates.socktunePlain.push(await socktuneUdp(socktune, false, saturated));
    rates.socktunePlainThreads.push(await socktuneUdp(socktune, false, saturated, { ioModel: 'workers', workers: 1 }));
    rates.socktuneBatched.push(await socktuneUdp(socktune, true, saturated));
    rates.iperf3ToSocktune.push(await iperf3Udp(SOCKTUNE_IPERF3_PORT));
    rates.pinnedIperf3.push(await iperf3Udp(PINNED_IPERF3_PORT, 0));
    rates.pinnedSocktune.push(await socktuneUdpCli(PINNED_SOCKTUNE_PORT, 0));
    pingPong.sockperf.push(await sockperfPingPong(SOCKPERF_PORT));
    pingPong.socktune.push(await sockperfPingPong(SOCKTUNE_SOCKPERF_PORT));
    pingPong.socktuneThread.push(await sockperfPingPong(SOCKTUNE_SOCKPERF_THREADS_PORT));
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
  for (const asked of DEFAULT_UDP_BUFFER_SIZES) {
    const result = await runUdpStream({
      target: socktune.target,
      durationSec: 2,
      intervalSec: 2,
      direction: 'forward',
      datagramBytes: 1460,
      bitsPerSecond: demoRate,
      parallel: 1,
      // One datagram per system call: the kernel then counts each drop as one datagram, and the two columns can be compared.
      batch: 1,
      client: {},
      server: { receiveBufferSize: asked },
    });
    const udp = result.summary.udp!;
    demo.push({
      asked,
      effective: result.effective.server?.receiveBufferSize ?? 0,
      sent: udp.sent,
      lost: udp.lost,
      drops: udp.receiveBufferDrops,
    });
  }
} finally {
  for (const child of daemons) child.kill();
  await socktune.stop();
}

const perSecond = (value: number): string => `${formatCount(value)}/s`;
const rateRow = (name: string, runs: Rate[], baseline: Rate[]): string => {
  const received = median(runs.map((r) => r.receivedPerSecond));
  const low = Math.min(...runs.map((r) => r.receivedPerSecond));
  const high = Math.max(...runs.map((r) => r.receivedPerSecond));
  const ratio = received / median(baseline.map((r) => r.receivedPerSecond));
  return (
    `| ${name} | ${perSecond(median(runs.map((r) => r.sentPerSecond)))} | ${perSecond(received)} (${perSecond(low)} – ${perSecond(high)}) | ` +
    `${median(runs.map((r) => r.lostPercent)).toFixed(1)}% | ${ratio.toFixed(2)}× |`
  );
};
const latencyRow = (name: string, runs: { p50Us: number; p99Us: number }[]): string => {
  const p50 = median(runs.map((r) => r.p50Us));
  const p99 = median(runs.map((r) => r.p99Us));
  const base50 = median(pingPong.sockperf.map((r) => r.p50Us));
  const base99 = median(pingPong.sockperf.map((r) => r.p99Us));
  return `| ${name} | ${formatMicros(p50)} | ${formatMicros(p99)} | ${(p50 / base50).toFixed(2)}× | ${(p99 / base99).toFixed(2)}× |`;
};
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# UDP on loopback: socktune next to iperf3 and sockperf (${date})

${repetitions} interleaved repetitions of ${seconds}s each, median (range). Node ${environment.node}, kernel
${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}, rmem_default ${environment.sysctl['net.core.rmem_default'] ?? '?'}.
Client and server share the machine's CPUs, unpinned; socktune's client reported saturation in ${saturated.count} of ${3 * repetitions} runs.

## Datagrams per second, ${DATAGRAM} B, \`-b 0\`, one stream

What the receiver counted per second (the figure that matters: a sender that outruns its receiver
only fills the receive buffer's drop counter), and what the sender handed to the kernel.

| sender → receiver | sent | received | lost | received vs iperf3 → iperf3 |
|---|---|---|---|---|
${rateRow('iperf3 -u → iperf3 -s', rates.iperf3, rates.iperf3)}
${rateRow('socktune stream -u --no-batch (a sender thread, one datagram per system call, as iperf3) → socktune server (event loop)', rates.socktunePlain, rates.iperf3)}
${rateRow('the same → socktune server --io-model workers --workers 1 (a blocking UDP thread, one recvfrom per datagram)', rates.socktunePlainThreads, rates.iperf3)}
${rateRow('socktune stream -u → socktune server (UDP GSO sends, GRO receives)', rates.socktuneBatched, rates.iperf3)}
${rateRow('iperf3 -u → socktune server iperf3', rates.iperf3ToSocktune, rates.iperf3)}

Pinned: every server on CPU 1, every client on CPU 0 (\`taskset\`), each side with a core of its own as on
two hosts; socktune's client one datagram per system call (a sender thread), its server on a UDP thread.

| sender → receiver, pinned | sent | received | lost | received vs iperf3 → iperf3, pinned |
|---|---|---|---|---|
${rateRow('iperf3 -u → iperf3 -s', rates.pinnedIperf3, rates.pinnedIperf3)}
${rateRow('socktune stream -u --no-batch → socktune server --io-model workers --workers 1', rates.pinnedSocktune, rates.pinnedIperf3)}

## UDP ping-pong, 64 B, one socket

The same stock client (\`sockperf pp\`, UDP) against each server; round trips (sockperf's
half-round-trip figures doubled). Lower is better; above 1 means socktune's server is slower.

| server | p50 | p99 | p50 vs sockperf sr | p99 vs sockperf sr |
|---|---|---|---|---|
${latencyRow('sockperf sr (C)', pingPong.sockperf)}
${latencyRow('socktune server sockperf (loop: node:dgram on the event loop)', pingPong.socktune)}
${latencyRow('socktune server sockperf --io-model workers --workers 1 (a blocking UDP thread)', pingPong.socktuneThread)}

## Loss against SO_RCVBUF at ${formatCount(demoRate / 1e6)} Mbit/s, 1460 B

One 2 s \`stream -u --no-batch\` per size against the socktune server, its UDP socket given the size;
the server socket's own drop counter (\`sk_drops\`, what SO_RXQ_OVFL reports) beside the loss.

| SO_RCVBUF asked | kernel gave | sent | lost | lost % | dropped by the receive buffer |
|---|---|---|---|---|---|
${demo
  .map(
    (row) =>
      `| ${formatBytes(row.asked)} | ${formatBytes(row.effective)} | ${row.sent} | ${row.lost} | ` +
      `${row.sent === 0 ? 0 : ((row.lost / row.sent) * 100).toFixed(2)}% | ${row.drops ?? 'unknown'} |`,
  )
  .join('\n')}
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/udp-${date}.md`, import.meta.url), markdown);
await writeFile(new URL(`./results/udp-${date}.json`, import.meta.url), JSON.stringify({ environment, rates, pingPong, demo }, null, 2));
process.stdout.write(markdown);
