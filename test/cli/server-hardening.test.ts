import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineWriter } from '../../src/cli/output.ts';
import { LogLimiter, summaryWriter } from '../../src/cli/log-limiter.ts';
import { printable } from '../../src/core/printable.ts';
import { waitFor } from '../../testkit/helpers.ts';
import { BIN, runCli, startServer } from '../../testkit/cli.ts';

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** A control connection that sends `text`, half-closes, and waits for the server to close it. */
async function sayAndLeave(port: number, text: string): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  socket.end(text);
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve));
}

test('a closed log pipe (stdout or stderr) does not stop the server: later clients are served and it exits 0 when told', async (t) => {
  for (const args of [['--json'], []]) {
    const server = await startServer(args);
    t.after(() => server.stop());
    // The reader goes away (a `| head -1`, a restarted log shipper): the server's next writes meet EPIPE.
    server.child.stdout!.destroy();
    server.child.stderr!.destroy();
    for (let i = 0; i < 2; i++) {
      const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.2', '-i', '0.2']);
      assert.equal(run.code, 0, `${args.join(' ')} run ${i}: ${run.stderr}`);
    }
    assert.equal(server.child.exitCode, null, `the server (${args.join(' ') || 'text'}) died on a closed log pipe`);
    assert.equal(await server.stop(), 0);
  }
});

test('LineWriter: a reader that is gone stops the writes; a slow one gets lines dropped and counted, not queued without bound', () => {
  const written: string[] = [];
  const listeners = new Map<string, () => void>();
  let queued = 0;
  const stream = {
    get writableLength() {
      return queued;
    },
    on(event: string, listener: () => void) {
      listeners.set(event, listener);
      return stream;
    },
    write(text: string) {
      written.push(text);
      return true;
    },
  } as unknown as NodeJS.WritableStream & { writableLength: number };
  const writer = new LineWriter(stream);
  writer.write('one');
  queued = 64 * 1024 * 1024;
  for (let i = 0; i < 1000; i++) writer.write(`flood ${i}`);
  assert.equal(writer.dropped, 1000);
  queued = 0;
  writer.write('two');
  assert.deepEqual(written, ['one\n', 'socktune: 1000 lines dropped: this output was not read fast enough\ntwo\n']);
  listeners.get('error')!();
  writer.write('three');
  assert.equal(written.length, 2, 'nothing is written after EPIPE');
});

test('LogLimiter: at most 5 lines a source and 50 in all per window; the rest summarized by source and kind', (t) => {
  const lines: string[] = [];
  const summarize = summaryWriter((line) => lines.push(line));
  const limiter = new LogLimiter(summarize, { windowMs: 60_000 });
  t.after(() => limiter.stop());
  const shown = Array.from({ length: 1503 }, (_, i) =>
    limiter.admit('198.18.0.7', i % 2 ? 'SOCKTUNE_ERR_AUTH' : 'SOCKTUNE_ERR_PROTOCOL'),
  ).filter(Boolean).length;
  assert.equal(shown, 5);
  let others = 0;
  for (let source = 0; source < 100; source++) if (limiter.admit(`198.18.1.${source}`, 'done')) others++;
  assert.equal(others, 45, 'the total cap holds across sources');
  limiter.stop();
  assert.equal(lines[0], '… 1,498 more from 198.18.0.7 in the last 60 s: SOCKTUNE_ERR_AUTH ×749, SOCKTUNE_ERR_PROTOCOL ×749');
  assert.equal(lines.at(-1), '… and 51 more from 51 other sources');
  assert.equal(lines.length, 6);
});

test('a flood of garbage connections writes a few log lines and one summary, not a line each', async () => {
  const server = await startServer([]);
  try {
    for (let i = 0; i < 60; i++) await sayAndLeave(server.port, 'not a control message\n');
    assert.ok(await waitFor(() => /test from/.test(server.stderr()), 5000));
  } finally {
    assert.equal(await server.stop(), 0);
  }
  const listed = server.stderr().match(/^test from /gm) ?? [];
  assert.equal(listed.length, 5, server.stderr());
  assert.match(server.stderr(), /^… 55 more from 127\.0\.0\.1 in the last 10 s: SOCKTUNE_ERR_PROTOCOL ×55$/m);
});

test('SIGHUP ends a server cleanly (its Unix socket removed); a stale socket file is replaced at start, a live one is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-unix-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'control.sock');
  const serve = (): ChildProcess => spawn(process.execPath, [BIN, 'server', '--unix', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const announced = (child: ChildProcess): Promise<boolean> =>
    new Promise((resolve) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('listening on')) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });

  const first = serve();
  t.after(() => first.kill('SIGKILL'));
  assert.equal(await announced(first), true);
  first.kill('SIGHUP');
  assert.equal(await exited(first), 0);
  assert.equal(existsSync(path), false, 'the socket file is removed on SIGHUP');

  // A server that died without closing leaves its socket file behind.
  const killed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => killed.stdout.once('data', resolve));
  killed.kill('SIGKILL');
  await exited(killed);
  assert.equal(existsSync(path), true);

  const second = serve();
  t.after(() => second.kill('SIGKILL'));
  assert.equal(await announced(second), true, 'a stale socket file is replaced');
  const third = await runCli(['server', '--unix', path], 20_000);
  assert.notEqual(third.code, 0);
  assert.match(third.stderr, /another server is listening on it/);
  second.kill('SIGTERM');
  assert.equal(await exited(second), 0);
  assert.equal(existsSync(path), false);
});

test('a client cannot put control characters (C0 or C1) into the server’s log', async () => {
  assert.equal(printable('a\u001b[2Jb\u009b2J\u007f\n'), 'a\\u001b[2Jb\\u009b2J\\u007f\\u000a');
  const server = await startServer([]);
  try {
    await sayAndLeave(server.port, '{"type":"x\u009b2J\u009d0;PWNED\u009c"}\n');
    assert.ok(await waitFor(() => /test from /.test(server.stderr()), 5000));
  } finally {
    await server.stop();
  }
  assert.equal(printable(server.stderr()).replaceAll('\\u000a', '\n'), server.stderr(), 'nothing but newlines to escape in the log');
  assert.match(server.stderr(), /\\u009b2J/);
});
