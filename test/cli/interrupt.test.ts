import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, BIN, startServer } from '../../testkit/cli.ts';

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A signal sent once the output so far matches `after` (or once `after` resolves), then `delayMs` later. */
interface Trigger {
  after: RegExp | Promise<unknown>;
  signal: NodeJS.Signals;
  delayMs?: number;
}

/** Runs the real CLI and sends it each trigger's signal in turn, on what it printed; resolves when it exits (bounded). */
function runAndSignal(args: string[], triggers: Trigger[]): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timers: NodeJS.Timeout[] = [];
    let next = 0;
    const fire = (): void => {
      const trigger = triggers[next++]!;
      timers.push(
        setTimeout(() => {
          child.kill(trigger.signal);
          arm();
        }, trigger.delayMs ?? 0),
      );
    };
    const arm = (): void => {
      const trigger = triggers[next];
      if (trigger === undefined) return;
      if (trigger.after instanceof Promise) void trigger.after.then(fire);
      else if (trigger.after.test(stdout + stderr)) fire();
    };
    const onOutput = (): void => {
      const trigger = triggers[next];
      if (trigger !== undefined && trigger.after instanceof RegExp && trigger.after.test(stdout + stderr)) fire();
    };
    child.stdout.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), onOutput()));
    child.stderr.on('data', (chunk: Buffer) => ((stderr += chunk.toString()), onOutput()));
    arm();
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      for (const timer of [...timers, giveUp]) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The result line of --ndjson output, as the document --json would print. */
function ndjsonResult(stdout: string): Interrupted {
  const { type, ...document } = JSON.parse(stdout.trim().split('\n').at(-1)!) as Interrupted & { type: string };
  assert.equal(type, 'result');
  return document;
}

/** The first interval line of --ndjson: the test is measuring. */
const MEASURING = /"type":"interval"/;

interface Interrupted {
  interrupted?: boolean;
  warnings: string[];
  summary: { measuredSeconds?: number; heldSeconds?: number };
}

test('Ctrl-C keeps the result: every client command ends early, prints what it measured marked interrupted, and exits 130', async () => {
  const server = await startServer([]);
  try {
    const target = ['-c', '127.0.0.1', '-p', String(server.port)];
    for (const args of [
      ['stream', ...target, '-t', '20'],
      ['stream', ...target, '-t', '20', '-R'],
      ['rr', ...target, '-t', '20'],
      ['rr', ...target, '-t', '20', '-C', '3', '--client-threads', '2'],
      ['crr', ...target, '-t', '20'],
      ['msg', ...target, '-t', '20'],
    ]) {
      const run = await runAndSignal([...args, '-i', '0.1', '--ndjson'], [{ after: MEASURING, signal: 'SIGINT' }]);
      assert.equal(run.code, 130, `${args.join(' ')}: ${run.stderr}`);
      const document = ndjsonResult(run.stdout);
      assertSchema(document);
      assert.equal(document.interrupted, true, args.join(' '));
      assert.ok(document.warnings.some((warning) => /^interrupted: the test was ended early/.test(warning)));
      const seconds = document.summary.measuredSeconds!;
      assert.ok(seconds > 0 && seconds < 10, `${args.join(' ')}: ${seconds} s measured`);
    }
    // conns has no intervals: its line "N open, M failed" says every connection is open and held.
    const conns = await runAndSignal(
      ['conns', ...target, '--target', '20', '--hold', '20'],
      [{ after: /20 open, 0 failed/, signal: 'SIGINT', delayMs: 100 }],
    );
    assert.equal(conns.code, 130, conns.stderr);
    assert.match(conns.stdout, /opened +20 of 20 .* 20 still open after 0\.\d+s/);
    assert.match(conns.stderr, /^warning: interrupted: the test was ended early/m);
  } finally {
    await server.stop();
  }
  // The server ended each test cleanly: the client said finish, nobody vanished.
  assert.doesNotMatch(server.stderr(), /PEER_GONE/);
  // Past five lines in ten seconds from one client, the server's log counts the rest in one summary line.
  const listed = server.stderr().match(/ done: /g)?.length ?? 0;
  const summarized = Number(/ done ×(\d+)/.exec(server.stderr())?.[1] ?? 0);
  assert.equal(listed + summarized, 7, server.stderr());
});

test('SIGTERM does the same with exit 143; the human summary says it was interrupted', async () => {
  const server = await startServer([]);
  try {
    const run = await runAndSignal(
      ['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '20', '-i', '0.1'],
      [{ after: /^\[\d+\.\d+-\d+\.\d+ s\]/m, signal: 'SIGTERM' }],
    );
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stdout, /requests +\d+ in \d+\.\d+s/);
    // Said once, as a warning.
    assert.equal(run.stderr.match(/interrupted/g)?.length, 1, run.stderr);
    assert.match(run.stderr, /^warning: interrupted: the test was ended early/m);
  } finally {
    await server.stop();
  }
});

test('a second Ctrl-C quits at once', async () => {
  // A server that accepts the control connection and never answers: the first Ctrl-C cannot finish anything.
  const held: net.Socket[] = [];
  let connected!: () => void;
  const reached = new Promise<void>((resolve) => (connected = resolve));
  const silent = net.createServer((socket) => {
    held.push(socket.on('error', () => {}));
    connected();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const run = await runAndSignal(
      ['rr', '-c', '127.0.0.1', '-p', String((silent.address() as net.AddressInfo).port), '-t', '20'],
      [
        // Connected: the client is past start-up and listens for Ctrl-C; the second comes once it said so.
        { after: reached, signal: 'SIGINT' },
        { after: /again to quit at once/, signal: 'SIGINT' },
      ],
    );
    assert.equal(run.code, 130, run.stderr);
    assert.doesNotMatch(run.stderr, /TIMEOUT/, 'quit on the second Ctrl-C, not at a timeout');
  } finally {
    for (const socket of held) socket.destroy();
    silent.close();
  }
});

test('stream --iperf3: Ctrl-C ends the iperf3 test with TEST_END and keeps the result', async () => {
  const server = await startServer(['--iperf3']);
  try {
    const run = await runAndSignal(
      ['stream', '--iperf3', '-c', '127.0.0.1', '-p', String(server.port), '-t', '20', '-i', '0.1', '--ndjson'],
      [{ after: MEASURING, signal: 'SIGINT' }],
    );
    assert.equal(run.code, 130, run.stderr);
    const document = ndjsonResult(run.stdout);
    assert.equal(document.interrupted, true);
    assert.ok(document.summary.measuredSeconds! < 10);
  } finally {
    await server.stop();
  }
  assert.match(server.stderr(), /iperf3 test from .*: done/);
});

test(
  'tune: pins client and embedded server apart; Ctrl-C finishes the trial under way, ranks what was measured and writes the report so far (exit 130)',
  { skip: availableParallelism() < 2 ? 'pinning apart needs two CPUs' : false },
  async () => {
    const report = join(mkdtempSync(join(tmpdir(), 'socktune-interrupt-')), 'tune.html');
    // The first progress line (on stderr, beside --json) comes as the first trial starts: Ctrl-C lets it finish.
    const run = await runAndSignal(
      ['tune', '--quick', '--json', '--report', report, '--io-model', 'workers', '-w', '256K', '--duration-per-trial', '0.2'],
      [{ after: /\] 0\/\d+ trials/, signal: 'SIGINT', delayMs: 300 }],
    );
    assert.equal(run.code, 130, run.stderr);
    const document = JSON.parse(run.stdout) as {
      interrupted?: boolean;
      warnings: string[];
      scenarios: { trials: unknown[] }[];
      options: { pinning: string };
      environment: { client: { cpuAffinity: string }; server: { cpuAffinity: string } };
    };
    assertSchema(document);
    assert.equal(document.interrupted, true);
    // On loopback the client and the embedded server get CPUs of their own (this machine has two).
    assert.equal(document.options.pinning, 'client CPUs 0, server CPUs 1 (--no-pin to share them)');
    assert.equal(document.environment.client.cpuAffinity, '0');
    assert.equal(document.environment.server.cpuAffinity, '1');
    assert.ok(document.scenarios[0]!.trials.length > 0, 'the trials measured before Ctrl-C are kept');
    assert.ok(document.warnings.some((warning) => /^interrupted: the sweep was ended early/.test(warning)));
    const html = readFileSync(report, 'utf8');
    assert.match(html, /interrupted: the sweep was ended early/);
    assert.match(html, /<th>CPU pinning<\/th><td>client CPUs 0, server CPUs 1/);
  },
);
