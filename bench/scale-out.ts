/**
 * Across test hosts (network namespaces, 198.18.0.0/15), in one run:
 *   1. link rate vs goodput: socktune stream and iperf3 over tbf-limited links, interleaved;
 *   2. the cost of an L4 balancer hop: rr --raw straight to a `socktune server --service echo`
 *      and through haproxy (TCP mode, round robin over two such servers), interleaved; the
 *      load spread read from the servers' own counters;
 *   3. three client hosts started together with --start-at, merged: exact merged percentiles
 *      next to each host's and next to the (wrong) mean of their p99s.
 * Needs root (ip netns), iperf3 and haproxy.
 *
 *   npm run bench:scale-out [-- --seconds 3 --repetitions 3]
 */
import { measured } from '../src/bench/results/histogram.ts';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatBits, formatCount, formatMicros } from '../src/bench/results/format.ts';
import { mergeResults } from '../src/bench/results/merge.ts';
import type { RrResult } from '../src/bench/results/result.ts';
import { median } from '../src/bench/results/stats.ts';
import { BIN, serverEvents, startServer, type RunningServer } from '../testkit/cli.ts';
import { haproxyConfig } from '../testkit/haproxy.ts';
import { netemAvailable, netnsUnavailable, TestNetwork } from '../testkit/netns.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, repetitions: { type: 'string', default: '3' }, out: { type: 'string' } },
});
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const outDir = values.out ?? new URL('./results/', import.meta.url).pathname;
const unavailable = netnsUnavailable();
if (unavailable) {
  process.stderr.write(`${unavailable}\n`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'socktune-scale-out-'));
const spread = (samples: number[]): string => `${formatBits(Math.min(...samples))}–${formatBits(Math.max(...samples))}`;

async function socktuneJson<T>(network: TestNetwork, host: string, args: string[]): Promise<T> {
  const run = await network.exec(host, process.execPath, [BIN, ...args, '--json'], (seconds + 30) * 1000);
  if (run.code !== 0) throw new Error(`socktune ${args.join(' ')} in ${host}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

function inHost(network: TestNetwork, host: string): (args: string[]) => ReturnType<TestNetwork['spawn']> {
  return (args) => network.spawn(host, process.execPath, args);
}

/** 1. Goodput over shaped links, socktune and iperf3 interleaved. */
async function linkRates(): Promise<{ rateMbit: number; tool: string; bitsPerSecond: number[] }[]> {
  const rows: { rateMbit: number; tool: string; bitsPerSecond: number[] }[] = [];
  for (const rateMbit of [100, 200, 500]) {
    const network = await TestNetwork.create({ server: { rateMbit }, client: {} });
    try {
      const address = network.host('server').address;
      const server = await startServer(['--bind', address], inHost(network, 'server'));
      network.spawn('server', 'iperf3', ['-s', '-p', '5201', '-B', address]);
      await network.waitForListening('server', 5201);
      const socktune = { rateMbit, tool: 'socktune stream', bitsPerSecond: [] as number[] };
      const iperf3 = { rateMbit, tool: 'iperf3', bitsPerSecond: [] as number[] };
      for (let repetition = 0; repetition < repetitions; repetition++) {
        const result = await socktuneJson<{ summary: { bitsPerSecond: number } }>(network, 'client', [
          'stream',
          '-c',
          address,
          '-p',
          String(server.port),
          '-t',
          String(seconds),
          '--omit',
          '0.5',
        ]);
        socktune.bitsPerSecond.push(result.summary.bitsPerSecond);
        const run = await network.exec('client', 'iperf3', ['-c', address, '-t', String(seconds), '-O', '1', '-J']);
        iperf3.bitsPerSecond.push(
          (JSON.parse(run.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second,
        );
      }
      rows.push(socktune, iperf3);
      await server.stop();
    } finally {
      await network.destroy();
    }
    process.stderr.write(`link ${rateMbit} Mbit/s done\n`);
  }
  return rows;
}

interface RrSample {
  rps: number;
  p50Us: number;
  p99Us: number;
}

/** 2. rr straight to one server vs through haproxy to two, interleaved. */
async function balancerHop(): Promise<{ direct: RrSample[]; balanced: RrSample[]; spread: number[]; connectionsPerRun: number }> {
  const network = await TestNetwork.create({ balancer: {}, backend1: {}, backend2: {}, client: {} });
  const connections = 8;
  try {
    const hosts = ['backend1', 'backend2'];
    const backends: RunningServer[] = await Promise.all(
      hosts.map((host) =>
        startServer(['--service', 'echo', '--io-model', 'workers', '--bind', network.host(host).address, '--json'], inHost(network, host)),
      ),
    );
    const config = join(work, 'haproxy.cfg');
    writeFileSync(
      config,
      haproxyConfig({
        listen: `${network.host('balancer').address}:7000`,
        backends: backends.map((backend, index) => `${network.host(hosts[index]!).address}:${backend.port}`),
      }),
    );
    network.spawn('balancer', '/usr/sbin/haproxy', ['-f', config, '-db']);
    await network.waitForListening('balancer', 7000);
    const targets = {
      direct: `${network.host('backend1').address}:${backends[0]!.port}`,
      balanced: `${network.host('balancer').address}:7000`,
    };
    const samples = { direct: [] as RrSample[], balanced: [] as RrSample[] };
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const kind of ['direct', 'balanced'] as const) {
        const result = await socktuneJson<RrResult>(network, 'client', [
          'rr',
          '--raw',
          '-c',
          targets[kind],
          '-t',
          String(seconds),
          '--omit',
          '0.5',
          '-C',
          String(connections),
          '--size',
          '64',
        ]);
        samples[kind].push({
          rps: result.summary.requestsPerSecond,
          p50Us: measured(result.summary.latency.p50Us, kind),
          p99Us: measured(result.summary.latency.p99Us, kind),
        });
      }
    }
    const totals = await Promise.all(
      backends.map(async (backend) => {
        await backend.stop();
        return serverEvents<{ metrics: { connectionsTotal: number } }>(backend, 'stopped')[0]?.metrics.connectionsTotal ?? 0;
      }),
    );
    // backend1 also took the direct runs' connections.
    const spreadAcross = [totals[0]! - connections * repetitions, totals[1]!];
    return { ...samples, spread: spreadAcross, connectionsPerRun: connections };
  } finally {
    await network.destroy();
  }
}

/** 3. Three client hosts against one server, started together, merged. */
async function mergedClients(): Promise<{
  perHost: { host: string; latency: RrResult['summary']['latency']; rps: number }[];
  merged: ReturnType<typeof mergeResults>;
  startSkewMs: number;
}> {
  const network = await TestNetwork.create({ server: {}, c1: {}, c2: {}, c3: {} });
  try {
    const address = network.host('server').address;
    const server = await startServer(['--bind', address], inHost(network, 'server'));
    const startAt = Date.now() + 3000;
    const hosts = ['c1', 'c2', 'c3'];
    // Different load per host so their distributions differ: 1, 4 and 16 connections.
    const results = await Promise.all(
      hosts.map((host, index) =>
        socktuneJson<RrResult>(network, host, [
          'rr',
          '-c',
          address,
          '-p',
          String(server.port),
          '-t',
          String(seconds),
          '-C',
          String(4 ** index),
          '--depth',
          '4',
          '--start-at',
          String(startAt),
        ]),
      ),
    );
    await server.stop();
    const merged = mergeResults(results.map((result, index) => ({ label: hosts[index]!, result })));
    return {
      perHost: results.map((result, index) => ({
        host: hosts[index]!,
        latency: result.summary.latency,
        rps: result.summary.requestsPerSecond,
      })),
      merged,
      startSkewMs: merged.startSkewMs,
    };
  } finally {
    await network.destroy();
  }
}

const netem = netemAvailable();
const links = await linkRates();
const hop = await balancerHop();
process.stderr.write('balancer done\n');
const clients = await mergedClients();
process.stderr.write('merge done\n');

const date = new Date().toISOString().slice(0, 10);
const environment = collectEnvironment();
const hopRow = (name: string, samples: RrSample[], baseline: RrSample[]): string =>
  `| ${name} | ${formatCount(median(samples.map((s) => s.rps)))} | ${formatMicros(median(samples.map((s) => s.p50Us)))} | ${formatMicros(median(samples.map((s) => s.p99Us)))} | ${(median(samples.map((s) => s.rps)) / median(baseline.map((s) => s.rps))).toFixed(2)}× |`;
const mergedLatency = clients.merged.summary.latency as RrResult['summary']['latency'];
const meanP99 = clients.perHost.reduce((total, row) => total + measured(row.latency.p99Us, 'a client host'), 0) / clients.perHost.length;
const markdown = `# Across test hosts: shaped links, a balancer hop, merged clients (${date})

Network namespaces on one machine joined by a bridge, addresses in 198.18.0.0/15, links shaped with
tc tbf (testkit/netns.ts). ${repetitions} repetition(s) of ${seconds}s, interleaved, median. Node ${environment.node},
kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}: clients, servers and the shaper share these CPUs.
netem: ${netem ? 'available' : 'not in this kernel, so no delay could be added: the bandwidth-delay-product effect of a small buffer is not measured here'}.

## 1. Goodput over a rate-limited link

Payload rate at the receiver; TCP/IP headers take about 3–5% of the line rate.

| link | tool | goodput (median) | range | of link rate |
|---|---|---|---|---|
${links.map((row) => `| ${row.rateMbit} Mbit/s | ${row.tool} | ${formatBits(median(row.bitsPerSecond))} | ${spread(row.bitsPerSecond)} | ${((median(row.bitsPerSecond) / (row.rateMbit * 1e6)) * 100).toFixed(1)}% |`).join('\n')}

## 2. An L4 balancer hop (haproxy in TCP mode, round robin over two servers)

\`socktune rr --raw\`, ${hop.connectionsPerRun} connections, 64 B requests, closed loop, against \`socktune server --service echo --io-model workers\`.

| path | req/s | p50 | p99 | vs direct |
|---|---|---|---|---|
${hopRow('client → server', hop.direct, hop.direct)}
${hopRow('client → haproxy → 2 servers', hop.balanced, hop.direct)}

Load spread through the balancer (connections each server accepted, from its own counters): ${hop.spread.join(' / ')}.
On this 2-core machine the balancer, both servers and the client compete for the same CPUs, so the
hop's cost here is mostly CPU (an extra process copying every byte), not wire time.

## 3. Three client hosts started together (--start-at), merged

Client hosts with 1, 4 and 16 connections (depth 4) against one server; started ${clients.startSkewMs} ms apart.

| host | req/s | p50 | p99 | p99.9 |
|---|---|---|---|---|
${clients.perHost.map((row) => `| ${row.host} | ${formatCount(row.rps)} | ${formatMicros(row.latency.p50Us)} | ${formatMicros(row.latency.p99Us)} | ${formatMicros(row.latency.p999Us)} |`).join('\n')}
| **merged (exact, from the HDR histograms)** | ${formatCount(clients.merged.summary.requestsPerSecond as number)} | ${formatMicros(mergedLatency.p50Us)} | ${formatMicros(mergedLatency.p99Us)} | ${formatMicros(mergedLatency.p999Us)} |

The mean of the three hosts' p99 would be ${formatMicros(meanP99)}: ${meanP99 > measured(mergedLatency.p99Us, 'the merged run') ? 'above' : 'below'} the true merged p99 of ${formatMicros(mergedLatency.p99Us)}, which is why \`socktune merge\` never averages percentiles.
`;
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `scale-out-${date}.md`), markdown);
writeFileSync(
  join(outDir, `scale-out-${date}.json`),
  `${JSON.stringify({ date, seconds, repetitions, environment, netem, links, balancer: hop, merged: { perHost: clients.perHost, summary: clients.merged.summary, startSkewMs: clients.startSkewMs } }, null, 2)}\n`,
);
process.stdout.write(markdown);
