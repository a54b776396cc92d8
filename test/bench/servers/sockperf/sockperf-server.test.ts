import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { connect, createSockperfServer, encodeSockperfMessage } from '../../../../src/index.ts';
import { closed, readBytes, run, waitForListening } from '../../../../testkit/helpers.ts';
import { BIN, runCli } from '../../../../testkit/cli.ts';

const haveSockperf = ['/usr/bin/sockperf', '/usr/local/bin/sockperf'].some((path) => existsSync(path));
const skip = haveSockperf ? false : 'sockperf is not installed (.ci/run installs it)';

/** `socktune server --sockperf -p 0 ...`, resolved with its port. */
function startSockperfServer(extra: string[]): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'server', '--sockperf', '-p', '0', ...extra], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => reject(new Error('no listening line')), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /listening on [\d.]+:(\d+)/.exec(chunk.toString());
      if (match) {
        clearTimeout(timer);
        resolve({ port: Number(match[1]), child });
      }
    });
  });
}

interface SockperfRun {
  observations: number;
  percentiles: Record<string, number>;
  text: string;
}

async function sockperf(mode: string, port: number, size: number, extra: string[] = []): Promise<SockperfRun> {
  const { stdout, stderr } = await run(
    'sockperf',
    [mode, '--tcp', '-i', '127.0.0.1', '-p', String(port), '-t', '1', '-m', String(size), ...extra],
    { timeout: 30_000 },
  );
  const text = `${stdout}\n${stderr}`;
  const percentiles: Record<string, number> = {};
  for (const match of text.matchAll(/---> (?:percentile ([\d.]+)|<(MAX|MIN)> observation) =\s+([\d.]+)/g))
    percentiles[match[1] ?? match[2]!] = Number(match[3]);
  const observations = Number(/Total (\d+) observations/.exec(text)?.[1] ?? 0);
  return { observations, percentiles, text };
}

function assertClean(result: SockperfRun): void {
  assert.match(result.text, /# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0/);
}

describe('stock sockperf against socktune server --sockperf', { skip }, () => {
  let server: { port: number; child: ChildProcess };
  before(async () => {
    server = await startSockperfServer([]);
  });
  after(() => server.child.kill('SIGTERM'));

  // Every size in ping-pong; under-load and throughput at the sizes that stress them (each stock run takes about 3 s).
  const sizes: [number, ('ul' | 'tp')[]][] = [
    [14, ['tp']],
    [64, ['ul']],
    [1400, []],
    [65536, ['tp']],
  ];
  for (const [size, modes] of sizes) {
    test(`ping-pong${modes.map((mode) => (mode === 'ul' ? ', under-load' : ', throughput')).join('')} with ${size}-byte messages`, async () => {
      const pingPong = await sockperf('pp', server.port, size);
      assertClean(pingPong);
      assert.ok(pingPong.observations > 100, `observations ${pingPong.observations}`);
      for (const key of ['MIN', '50.000', '99.000', '99.999', 'MAX']) assert.ok(pingPong.percentiles[key]! > 0, `percentile ${key}`);
      assert.ok(
        pingPong.percentiles['MIN']! <= pingPong.percentiles['50.000']! && pingPong.percentiles['50.000']! <= pingPong.percentiles['MAX']!,
      );
      if (modes.includes('ul')) {
        const underLoad = await sockperf('ul', server.port, size, ['--mps', '5000']);
        assertClean(underLoad);
        assert.ok(underLoad.observations > 10);
      }
      if (modes.includes('tp')) {
        const throughput = await sockperf('tp', server.port, size);
        assert.match(throughput.text, /Message Rate is \d+ \[msg\/sec\]/);
      }
    });
  }
});

for (const model of [
  ['--io-model', 'workers', '--workers', '2'],
  ['--io-model', 'thread-per-conn'],
  ['--io-model', 'thread-per-conn', '--blocking'],
]) {
  test(`sockperf pp against socktune server --sockperf ${model.join(' ')}`, { skip }, async () => {
    const server = await startSockperfServer(model);
    try {
      const result = await sockperf('pp', server.port, 64);
      assertClean(result);
      assert.ok(result.observations > 100);
    } finally {
      server.child.kill('SIGTERM');
    }
  });
}

test('socktune rr --sockperf against stock sockperf sr', { skip }, async () => {
  const port = 30000 + (process.pid % 2000);
  const sr = spawn('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await waitForListening(port);
    const result = await runCli(['rr', '--sockperf', '-c', '127.0.0.1', '-p', String(port), '-t', '1', '--size', '64', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { summary } = JSON.parse(result.stdout);
    assert.ok(summary.requests > 100);
    assert.ok(summary.latency.p50Us > 0);
  } finally {
    sr.kill();
  }
});

test('bad input closes only that connection, with a SOCKTUNE_ERR_* code counted', async (t) => {
  const server = createSockperfServer({ port: 0 });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const healthy = await connect({ port });
  const request = encodeSockperfMessage(7n, 3, 64);
  const cases: Buffer[] = [
    (() => {
      const short = encodeSockperfMessage(1n, 3, 14);
      short.writeUInt32BE(10, 10);
      return short;
    })(),
    (() => {
      const huge = encodeSockperfMessage(1n, 3, 14);
      huge.writeUInt32BE(2 ** 31, 10);
      return huge;
    })(),
    Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'),
  ];
  for (const bad of cases) {
    const offender = await connect({ port });
    offender.on('error', () => {});
    offender.write(bad);
    await closed(offender);
  }
  const truncated = await connect({ port });
  truncated.end(request.subarray(0, 30));
  await closed(truncated);
  healthy.write(request);
  const reply = await readBytes(healthy, 64);
  assert.equal(reply.readBigUInt64BE(0), 7n);
  assert.equal(reply.readUInt16BE(8), 2, 'CLIENT cleared, PONG_REQUEST kept');
  healthy.destroy();
  const { errors } = server.metrics();
  assert.equal((errors.SOCKTUNE_ERR_PROTOCOL ?? 0) + (errors.SOCKTUNE_ERR_FRAME_TOO_LARGE ?? 0), 4, JSON.stringify(errors));
});
