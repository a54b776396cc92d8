import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { validateResult } from '../../src/bench/results/result-schema.ts';
import { Secret } from '../../src/core/secret.ts';
import { runProcess } from '../../testkit/helpers.ts';
import { assertSchema, BIN, runCli, startServer } from '../../testkit/cli.ts';

const TOKEN = 'tok-3f9a1c77e2b94d05a8c1-secret';

test('Secret: JSON, string conversion and util.inspect never show the value; reveal() does', () => {
  const secret = new Secret(TOKEN);
  const holder = { target: { host: 'h', authToken: secret } };
  assert.equal(secret.reveal(), TOKEN);
  for (const text of [JSON.stringify(holder), String(secret), inspect(holder, { depth: 5 }), inspect(secret)]) {
    assert.ok(!text.includes(TOKEN), text);
    assert.match(text, /redacted/);
  }
});

/** Every client command, short, in each output form; `file` marks a run that also writes a file there. */
interface SecretRun {
  args: string[];
  env?: NodeJS.ProcessEnv;
  file?: string;
  /** Ctrl-C once the run prints this (tune's first progress line: the trial under way then finishes). */
  interruptOn?: RegExp;
}

/** tune's first progress line, printed as its first trial starts. */
const TRIAL_UNDER_WAY = /\] 0\/\d+ trials/;

function clientRuns(port: number, dir: string): SecretRun[] {
  const at = ['-c', '127.0.0.1', '-p', String(port)];
  const short = ['-t', '0.3', '-i', '0.3'];
  const smallGrid = ['--io-model', 'loop', '-w', '256K', '--duration-per-trial', '0.1'];
  const runs: SecretRun[] = [];
  for (const output of [['--json'], ['--ndjson'], []]) {
    runs.push(
      { args: ['stream', ...at, ...short, ...output] },
      { args: ['rr', ...at, ...short, ...output, '--auth-token', TOKEN], env: { SOCKTUNE_AUTH_TOKEN: '' } },
      { args: ['crr', ...at, ...short, ...output] },
      { args: ['msg', ...at, ...short, ...output] },
      { args: ['conns', ...at, '--target', '4', '--hold', '0', ...output] },
    );
  }
  runs.push({ args: ['rr', ...at, ...short, '--repeat', '2', '--json'] });
  // tune ends by Ctrl-C here: what it measured by then goes to its JSON, its table and the report.
  const report = join(dir, 'tune.html');
  runs.push({
    args: ['tune', ...at, '--workload', 'rr', '--auth-token', TOKEN, '--report', report, '--json', ...smallGrid],
    file: report,
    interruptOn: TRIAL_UNDER_WAY,
  });
  runs.push({ args: ['tune', ...at, '--workload', 'rr', '--no-report', ...smallGrid], interruptOn: TRIAL_UNDER_WAY });
  return runs;
}

test('an auth token appears in no output of any client command (--json, --ndjson, text, tune report) and results say only "auth": true', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-secrets-'));
  const server = await startServer(['--json'], (args) =>
    spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SOCKTUNE_AUTH_TOKEN: TOKEN } }),
  );
  t.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { SOCKTUNE_AUTH_TOKEN: TOKEN };
  const interrupted = new WeakSet<object>();
  const check = async (run: SecretRun): Promise<void> => {
    const result = await runProcess(process.execPath, [BIN, ...run.args], {
      cwd: dir,
      env: { ...process.env, ...env, ...run.env },
      timeoutMs: 60_000,
      label: run.args.join(' '),
      onOutput: ({ stderr, child }) => {
        if (!run.interruptOn?.test(stderr) || interrupted.has(child)) return;
        interrupted.add(child);
        child.kill('SIGINT');
      },
    });
    const label = `socktune ${run.args.join(' ')}`;
    assert.equal(result.code, run.interruptOn === undefined ? 0 : 130, `${label}: ${result.stderr}`);
    assert.ok(!result.stdout.includes(TOKEN), `${label}: the token is in stdout`);
    assert.ok(!result.stderr.includes(TOKEN), `${label}: the token is in stderr`);
    if (run.file !== undefined) assert.ok(!readFileSync(run.file, 'utf8').includes(TOKEN), `${label}: the token is in ${run.file}`);
    if (!run.args.includes('--json') || run.args[0] === 'tune') return;
    const document = JSON.parse(result.stdout) as { options: { auth: boolean; target: Record<string, unknown> } };
    assertSchema(document);
    assert.equal(document.options.auth, true, label);
    assert.deepEqual(Object.keys(document.options.target).sort(), ['host', 'port'], label);
  };
  // Four at a time: under the server's per-client cap, and a few seconds in all on 2 cores.
  const queue = clientRuns(server.port, dir);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let run = queue.shift(); run !== undefined; run = queue.shift()) await check(run);
    }),
  );
  for (const name of readdirSync(dir)) assert.ok(!readFileSync(join(dir, name), 'utf8').includes(TOKEN), `the token is in ${name}`);
  assert.ok(!server.stdout().includes(TOKEN) && !server.stderr().includes(TOKEN), 'the server printed its token');
});

test('the schema refuses a result whose options carry a field it does not list (a new secret cannot slip in)', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.2', '-i', '0.2', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const document = JSON.parse(run.stdout) as { options: Record<string, unknown> & { target: Record<string, unknown> } };
  assertSchema(document);
  assert.equal(document.options.auth, false);
  for (const slipped of [
    { ...document, options: { ...document.options, authToken: 'x' } },
    { ...document, options: { ...document.options, target: { ...document.options.target, authToken: 'x' } } },
  ]) {
    assert.throws(() => validateResult(slipped, 'slipped.json'), /options(\.target)? must NOT have additional properties/);
  }
});
