import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../testkit/helpers.ts';
import { assertSchema, runCli, startServer, waitForServerEvents } from '../../testkit/cli.ts';

test('server: a flag a mode cannot honour is refused before anything listens, above all the security flags', async () => {
  const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
    [
      ['--sockperf', '--auth-token', 'a secret of sixteen+ chars'],
      /--auth-token does nothing for socktune server sockperf: the sockperf protocol has no authentication/,
    ],
    [
      ['--service', 'echo', '--auth-token', 'a secret of sixteen+ chars'],
      /--auth-token does nothing for socktune server service: the bare service port has no authentication/,
    ],
    [
      ['--iperf3', '--auth-token', 'a secret of sixteen+ chars'],
      /--auth-token does nothing for socktune server iperf3: iperf3 clients cannot answer socktune's challenge: they authenticate with RSA/,
    ],
    [
      ['--sockperf'],
      /SOCKTUNE_AUTH_TOKEN is set, but the sockperf protocol has no authentication/,
      { SOCKTUNE_AUTH_TOKEN: 'a secret of sixteen+ chars' },
    ],
    [
      ['--service', 'echo', '--max-duration', '60'],
      /--max-duration does nothing for socktune server service: a bare port runs no tests to time/,
    ],
    [
      ['--sockperf', '--max-tests', '4'],
      /--max-tests is not a flag of socktune server sockperf; it belongs to socktune server, socktune server iperf3/,
    ],
    [
      ['--iperf3', '--io-model', 'workers'],
      /--io-model is not a flag of socktune server iperf3; it belongs to socktune server sockperf, socktune server service/,
    ],
    [['--max-per-ip', '5'], /--max-per-ip is not a flag of socktune server; it belongs to socktune server iperf3/],
    [['--auth-token', ''], /an empty auth token would mean no authentication/],
    [[], /an empty auth token would mean no authentication: .* or unset SOCKTUNE_AUTH_TOKEN/, { SOCKTUNE_AUTH_TOKEN: '' }],
    [['--iperf3', '--rsa-private-key-path', '/nonexistent'], /needs both --rsa-private-key-path and --authorized-users-path/],
    [['--max-duration', '0'], /--max-duration takes 1 to 3600 seconds/],
    [['--max-socket-buffer', '3G'], /--max-socket-buffer takes at most 2147483647 bytes/],
  ];
  for (const [args, pattern, env] of cases) {
    const result = await runCli(['server', '-p', '0', ...args], 15_000, undefined, env ?? {});
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, pattern, args.join(' '));
  }
});

test('server --iperf3 --rsa-private-key-path --authorized-users-path: stock iperf3 clients must authenticate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-server-modes-'));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'private.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'users.csv'), `alice,${createHash('sha256').update('{alice}right-horse').digest('hex')}\n`);
  const server = await startServer([
    '--iperf3',
    '--rsa-private-key-path',
    join(dir, 'private.pem'),
    '--authorized-users-path',
    join(dir, 'users.csv'),
  ]);
  try {
    assert.match(server.stdout(), /clients must authenticate \(RSA\)/);
    const client = (password: string | undefined) =>
      run(
        'iperf3',
        [
          '-c',
          '127.0.0.1',
          '-p',
          String(server.port),
          '-t',
          '1',
          '-J',
          ...(password === undefined ? [] : ['--username', 'alice', '--rsa-public-key-path', join(dir, 'public.pem')]),
        ],
        {
          timeout: 30_000,
          env: { ...process.env, ...(password === undefined ? {} : { IPERF3_PASSWORD: password }) },
        },
      ).then(
        // iperf3 -J may exit 0 on a refused test: its verdict is the report's "error".
        ({ stdout }) => (JSON.parse(stdout) as { error?: string }).error ?? 'ok',
        (error: { stdout: string }) => (JSON.parse(error.stdout) as { error: string }).error,
      );
    assert.equal(await client('right-horse'), 'ok');
    assert.match(await client('wrong-horse'), /test authorization failed/);
    assert.match(await client(undefined), /test authorization failed/);
  } finally {
    assert.equal(await server.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(server.stderr(), /SOCKTUNE_ERR_AUTH: iperf3 authentication failed/);
});

test('server --iperf3 --max-rate: a stock iperf3 -R gets no more than the cap allows', async () => {
  const server = await startServer(['--iperf3', '--max-rate', '8M']);
  try {
    assert.match(server.stdout(), /sends at most 8 Mbit\/s/);
    const { stdout } = await run('iperf3', ['-c', '127.0.0.1', '-p', String(server.port), '-t', '2', '-R', '-J'], { timeout: 30_000 });
    const report = JSON.parse(stdout) as { end: { sum_received: { bytes: number; seconds: number } } };
    const { bytes, seconds } = report.end.sum_received;
    // The rate over the test, plus two bursts of the budget (64 KiB each at this rate).
    const ceiling = 1_000_000 * seconds + 2 * 64 * 1024;
    assert.ok(bytes > 0 && bytes <= ceiling, `${bytes} bytes in ${seconds} s (ceiling ${ceiling})`);
  } finally {
    await server.stop();
  }
});

test("server --iperf3 --json: a finished test's line carries the figures its text prints, and the stock client's counts", async (t) => {
  const server = await startServer(['--iperf3', '--json']);
  t.after(() => server.stop());
  const { stdout } = await run('iperf3', ['-c', '127.0.0.1', '-p', String(server.port), '-n', '200M', '-P', '2', '-J'], {
    timeout: 30_000,
  });
  const report = JSON.parse(stdout) as { end: { sum_sent: { bytes: number } } };
  const [event] = await waitForServerEvents<Record<string, unknown>>(server, 'test', 1);
  assert.ok(event, server.stdout());
  assertSchema(event);
  const streams = event.streams as { id: number; sender: boolean; bytes: number; bitsPerSecond: number }[];
  assert.equal(event.outcome, 'done');
  assert.equal(streams.length, 2);
  assert.ok(streams.every((stream) => !stream.sender && stream.bitsPerSecond > 0));
  assert.equal(event.bytesIn, report.end.sum_sent.bytes, 'what the server received is what the client sent');
  assert.equal(event.bytesOut, 0);
  assert.equal(event.reverse, false);
  assert.ok((event.seconds as number) > 0);
  for (const stream of streams) {
    const line = new RegExp(`\\[\\s*${stream.id}\\] receiver ${stream.bytes} bytes in ([\\d.]+) s, ([\\d.]+) ([kMG]?)bit/s`).exec(
      server.stderr(),
    );
    assert.ok(line, server.stderr());
    // The time printed is the one the rate is of: the bytes over it give the rate, to the printed precision.
    const printedBits = Number(line[2]) * { '': 1, k: 1e3, M: 1e6, G: 1e9 }[line[3]!]!;
    const bits = (stream.bytes * 8) / Number(line[1]);
    // Within the rounding of the printed figures: 3 digits of the rate, a hundredth of a second of the time.
    const tolerance = 0.01 + 0.005 / Number(line[1]);
    assert.ok(Math.abs(bits - printedBits) / printedBits < tolerance, `${line[0]}: ${bits} bit/s from its own figures`);
  }
});
