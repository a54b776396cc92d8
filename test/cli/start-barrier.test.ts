import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, BIN, runCli, runInProcess, startServer, type RunningServer } from '../../testkit/cli.ts';
import { freePort, runProcess, type ProcessRun } from '../../testkit/helpers.ts';

const TOKEN = 'barrier-test-token-0123456789';
const FAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(
  (path) => existsSync(path),
);

/** A client of the barrier test `group`: rr against the server for half a second, its JSON on stdout. */
function client(
  port: number,
  group: string,
  clients: number,
  env: NodeJS.ProcessEnv,
  onStderr?: (stderr: string) => void,
): Promise<ProcessRun> {
  const args = ['rr', '-c', '127.0.0.1', '-p', String(port), '-t', '0.5', '--json'];
  const barrier = [
    '--barrier',
    `127.0.0.1:${port}`,
    '--barrier-clients',
    String(clients),
    '--barrier-group',
    group,
    '--barrier-timeout',
    '60',
  ];
  return runProcess(process.execPath, [BIN, ...args, ...barrier], {
    env: { ...process.env, SOCKTUNE_AUTH_TOKEN: TOKEN, ...env },
    timeoutMs: 90_000,
    label: `client of ${group}`,
    ...(onStderr === undefined ? {} : { onOutput: ({ stderr }) => onStderr(stderr) }),
  });
}

test(
  'clients started apart meet at a barrier and start together; a clock 0.8 s ahead is measured, and merge lines the runs up on the server’s clock',
  { skip: FAKETIME === undefined ? 'libfaketime is not installed (Debian: apt-get install faketime, as .ci/run does)' : false },
  async (t) => {
    const server = await startServer(['--json'], (args) =>
      spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SOCKTUNE_AUTH_TOKEN: TOKEN } }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'socktune-barrier-'));
    t.after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    // The third client starts only once two wait: it joins late, with a clock running 0.8 s ahead.
    let late: Promise<ProcessRun> | undefined;
    const startLate = (stderr: string): void => {
      if (late !== undefined || !/barrier t1: 2 of 3 clients there/.test(stderr)) return;
      late = client(server.port, 't1', 3, { LD_PRELOAD: FAKETIME, FAKETIME: '+0.8', FAKETIME_DONT_FAKE_MONOTONIC: '1' });
    };
    const early = await Promise.all([client(server.port, 't1', 3, {}, startLate), client(server.port, 't1', 3, {}, startLate)]);
    assert.ok(late !== undefined, 'the third client started once two were there');
    const runs = [...early, await late];
    const results = runs.map((run, index) => {
      assert.equal(run.code, 0, `client ${index}: ${run.stderr}`);
      const result = JSON.parse(run.stdout);
      assertSchema(result);
      return result;
    });
    assert.equal(new Set(results.map((result) => result.startAt)).size, 1, 'one common start, on the server’s clock');
    const offsets = results.map((result) => result.barrier.clockOffsetMs);
    assert.ok(Math.abs(offsets[0]) < 50 && Math.abs(offsets[1]) < 50, `offsets ${offsets.join(', ')}`);
    assert.ok(Math.abs(offsets[2] + 800) < 100, `the clock 0.8 s ahead is measured as such: ${offsets[2]} ms`);
    const starts = results.map((result) => Date.parse(result.startedAt) + result.barrier.clockOffsetMs);
    const skew = Math.max(...starts) - Math.min(...starts);
    t.diagnostic(`start skew on the server's clock: ${skew.toFixed(1)} ms; offsets ${offsets.join(', ')} ms`);
    // Each set its test up within the server's 1 s lead and started at the instant, whatever its own clock says; uncorrected the
    // third would look 800 ms off.
    assert.ok(skew < 300, `start skew ${skew} ms; ${JSON.stringify(results.map((result) => result.barrier))}`);
    const files = results.map((result, index) => {
      const file = join(dir, `client-${index}.json`);
      writeFileSync(file, JSON.stringify(result));
      return file;
    });
    const merged = await runCli(['merge', ...files, '--json']);
    assert.equal(merged.code, 0, merged.stderr);
    const document = JSON.parse(merged.stdout);
    assert.deepEqual(
      document.sources.map((source: { clockOffsetMs: number }) => source.clockOffsetMs),
      offsets,
    );
    // Merge reads every start on the common clock, to the millisecond: the skew is this one, not the 800 ms the clocks disagree by.
    assert.equal(document.startSkewMs, Math.round(skew));
    const released = server.stdout().match(/"event":"test".*"service":"barrier".*"outcome":"done"/g) ?? [];
    assert.equal(released.length, 3, server.stdout());
  },
);

test('a barrier that waits for more clients than come times out with how many came; a client giving another count is refused', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  let other: Promise<ProcessRun> | undefined;
  const waiting = await runProcess(
    process.execPath,
    [
      BIN,
      'rr',
      '-c',
      '127.0.0.1',
      '-p',
      String(server.port),
      '-t',
      '0.5',
      '--barrier',
      `127.0.0.1:${server.port}`,
      '--barrier-clients',
      '2',
      '--barrier-timeout',
      '3',
      '--json',
    ],
    {
      timeoutMs: 30_000,
      onOutput: ({ stderr }) => {
        if (other === undefined && /barrier default: 1 of 2 clients there/.test(stderr))
          other = runCli([
            'rr',
            '-c',
            '127.0.0.1',
            '-p',
            String(server.port),
            '--barrier',
            `127.0.0.1:${server.port}`,
            '--barrier-clients',
            '3',
          ]);
      },
    },
  );
  assert.notEqual(waiting.code, 0);
  assert.match(waiting.stderr, /barrier default: 1 of 2 clients there after 3 s \(--barrier-timeout\): not starting/);
  assert.equal(waiting.stdout, '', 'no result: it never ran');
  const refused = await other!;
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /barrier default waits for 2 clients; this client says 3: give every client the same --barrier-clients/);
});

test('--barrier flags: what goes together, and what does not', async () => {
  const cases: [string[], RegExp][] = [
    [['--barrier-clients', '2'], /--barrier-clients goes with --barrier HOST\[:PORT\]/],
    [['--barrier', '127.0.0.1'], /--barrier needs --barrier-clients N/],
    [
      ['--barrier', '127.0.0.1', '--barrier-clients', '2', '--start-at', String(Date.now() + 5000)],
      /--barrier and --start-at are two ways/,
    ],
    [['--barrier', '127.0.0.1', '--barrier-clients', '2', '--barrier-group', 'Bad Name'], /--barrier-group takes \[a-z0-9._-\]/],
    [['--barrier', '127.0.0.1', '--barrier-clients', '0'], /--barrier-clients/],
  ];
  for (const [flags, message] of cases) {
    const run = await runInProcess(['rr', '-c', '127.0.0.1', ...flags]);
    assert.equal(run.code, 2, flags.join(' '));
    assert.match(run.stderr, message);
  }
});

test('a barrier server that names a start far off is not waited for; Ctrl-C ends a wait at the barrier', async (t) => {
  // A stranger's port that speaks the barrier protocol: honest clock, then a release a day away (or never, for the second client).
  let farOff = true;
  const fake = createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffered.slice(0, newline)) as { type: string; t?: number; clients?: number };
        buffered = buffered.slice(newline + 1);
        const reply = (value: unknown): boolean => socket.write(`${JSON.stringify(value)}\n`);
        if (message.type === 'barrier') reply({ type: 'joined', present: 1, clients: message.clients });
        if (message.type === 'clock') reply({ type: 'clock', t: message.t, serverMs: performance.timeOrigin + performance.now() });
        if (message.type === 'wait' && farOff) reply({ type: 'release', atMs: Date.now() + 86_400_000 });
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  t.after(() => fake.close());
  const { port } = fake.address() as AddressInfo;
  const barrier = ['rr', '-c', '127.0.0.1', '-p', '1', '-t', '1', '--barrier', `127.0.0.1:${port}`, '--barrier-clients', '2'];
  const far = await runCli(barrier, 30_000);
  assert.equal(far.code, 3, far.stderr);
  assert.match(far.stderr, /the server named a start 86400\.0 s away; a barrier releases within a second: not waiting for it/);
  farOff = false;
  const interrupted = await runProcess(process.execPath, [BIN, ...barrier], {
    timeoutMs: 30_000,
    onOutput: ({ stderr, child }) => {
      if (/barrier default: 1 of 2 clients there/.test(stderr) && child.signalCode === null && !child.killed) child.kill('SIGINT');
    },
  });
  assert.equal(interrupted.code, 130, interrupted.stderr);
  assert.match(interrupted.stderr, /interrupted at the start barrier: not starting/);
});

test('a client that starts before its barrier server listens tries again every second, then joins', async (t) => {
  const port = await freePort();
  let server: RunningServer | undefined;
  t.after(() => server?.stop());
  const run = await runProcess(
    process.execPath,
    [
      BIN,
      'rr',
      '-c',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      '0.3',
      '--barrier',
      `127.0.0.1:${port}`,
      '--barrier-clients',
      '1',
      '--barrier-timeout',
      '30',
      '--json',
    ],
    {
      timeoutMs: 60_000,
      onOutput: ({ stderr }) => {
        // The server comes up only once the client has found nothing there.
        if (server === undefined && /127\.0\.0\.1:\d+ not reachable yet \(.*\); trying again every second/.test(stderr))
          server = {} as RunningServer;
        else return;
        void startServer(['-p', String(port)]).then((started) => (server = started));
      },
    },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).barrier.clients, 1);
  assert.equal(run.stderr.match(/not reachable yet/g)?.length, 1, 'said once, not at every try');
});
