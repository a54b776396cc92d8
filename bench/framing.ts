/**
 * The small-message fast path, in one interleaved run on loopback (64 bytes on the wire each):
 *   - one way: `socktune msg` (60 B payload + 4 B prefix) → socktune server, vs `sockperf tp -m 64` → `sockperf sr`
 *   - echo:    `socktune msg --echo` against socktune's msg-echo server, vs the same client against a
 *              plain node:net server that writes each message back with its own write()
 *
 *   npm run bench:framing [-- --seconds 3 --repetitions 3]
 */
import { measured } from '../src/bench/results/histogram.ts';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { formatCount, formatMicros } from '../src/bench/results/format.ts';
import { LocalServer } from '../src/bench/servers/control/local-server.ts';
import { runMsg, type MsgOptions } from '../src/bench/engines/msg.ts';
import { median } from '../src/bench/results/stats.ts';
import { runSockperf, sockperfMessageRate } from './sockperf-client.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, repetitions: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const repetitions = Number(values.repetitions);
const SOCKPERF_PORT = 11198;

function startPlainServer(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(process.execPath, [new URL('./peers/plain-echo-server.ts', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => {
    child.stdout.once('data', (chunk: Buffer) => resolve({ port: Number(chunk.toString().trim()), stop: () => child.stdin.end() }));
  });
}

async function sockperfThroughput(): Promise<number> {
  const rate = sockperfMessageRate(await runSockperf('tp', SOCKPERF_PORT, seconds));
  if (rate === undefined) throw new Error('no message rate in sockperf output');
  return rate;
}

const sockperf = spawn('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', String(SOCKPERF_PORT)], { stdio: 'ignore' });
const socktune = await LocalServer.start();
const plain = await startPlainServer();
await new Promise((resolve) => setTimeout(resolve, 500));
const common: Omit<MsgOptions, 'mode' | 'target'> = {
  durationSec: seconds,
  omitSec: 0.3,
  size: 60,
  connections: 1,
  batch: 'auto',
  depth: 64,
  client: {},
  server: {},
  intervalSec: seconds,
};
const samples = {
  sockperfTp: [] as number[],
  socktuneOneWay: [] as number[],
  socktuneEcho: [] as number[],
  plainEcho: [] as number[],
  socktuneEchoP99: [] as number[],
  plainEchoP99: [] as number[],
};
let saturated = 0;
try {
  for (let repetition = 0; repetition < repetitions; repetition++) {
    samples.sockperfTp.push(await sockperfThroughput());
    const oneWay = await runMsg({ ...common, target: socktune.target, mode: 'one-way' });
    samples.socktuneOneWay.push(oneWay.summary.messagesPerSecond);
    const echo = await runMsg({ ...common, target: socktune.target, mode: 'echo' });
    samples.socktuneEcho.push(echo.summary.messagesPerSecond);
    samples.socktuneEchoP99.push(measured(echo.summary.latency!.p99Us, 'msg echo'));
    const plainEcho = await runMsg({ ...common, target: { host: '127.0.0.1', port: plain.port }, raw: true, mode: 'echo' });
    samples.plainEcho.push(plainEcho.summary.messagesPerSecond);
    samples.plainEchoP99.push(measured(plainEcho.summary.latency!.p99Us, 'plain echo'));
    saturated += [oneWay, echo, plainEcho].filter((result) => result.clientSaturated).length;
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
} finally {
  sockperf.kill();
  plain.stop();
  await socktune.stop();
}

const cell = (values: number[]): string =>
  `${formatCount(median(values))} (${formatCount(Math.min(...values))}–${formatCount(Math.max(...values))})`;
const environment = collectEnvironment();
const date = new Date().toISOString().slice(0, 10);
const markdown = `# Small messages: socktune's fast path vs sockperf and plain node:net (${date})

64 bytes per message on the wire, 1 connection, loopback. ${repetitions} interleaved repetitions of ${seconds}s,
median (range). Node ${environment.node}, kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}.
The socktune client reported saturation in ${saturated} of ${repetitions * 3} runs. Client and server share the CPUs.

## One way

| sender → receiver | messages/s | vs sockperf tp |
|---|---|---|
| sockperf tp -m 64 → sockperf sr | ${cell(samples.sockperfTp)} | 1.00× |
| socktune msg (coalesced) → socktune server | ${cell(samples.socktuneOneWay)} | ${(median(samples.socktuneOneWay) / median(samples.sockperfTp)).toFixed(2)}× |

## Echo (socktune msg --echo, 64 in flight)

| server | messages/s | p99 | vs plain node:net |
|---|---|---|---|
| plain node:net, one write() per message | ${cell(samples.plainEcho)} | ${formatMicros(median(samples.plainEchoP99))} | 1.00× |
| socktune msg-echo (coalesced writes) | ${cell(samples.socktuneEcho)} | ${formatMicros(median(samples.socktuneEchoP99))} | ${(median(samples.socktuneEcho) / median(samples.plainEcho)).toFixed(2)}× |
`;
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL(`./results/framing-${date}.md`, import.meta.url), markdown);
await writeFile(
  new URL(`./results/framing-${date}.json`, import.meta.url),
  JSON.stringify({ environment, seconds, repetitions, samples }, null, 2),
);
process.stdout.write(markdown);
