import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { closed, connectedClient, echoes, waitFor } from '../../testkit/helpers.ts';
import { runCli, startServer, type RunningServer } from '../../testkit/cli.ts';

/** Descriptors the server process may have: a little more than Node and the listener need. */
const NOFILE = 64;

function underLowLimit(extra: string[]): Promise<RunningServer> {
  return startServer(extra, (args) =>
    spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

/** Opens `count` connections at once (the kernel accepts them into the backlog whatever the server can hold). */
async function flood(port: number, count: number): Promise<net.Socket[]> {
  const sockets = Array.from({ length: count }, () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    return socket;
  });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return sockets;
}

for (const model of [
  ['--io-model', 'loop'],
  ['--io-model', 'workers', '--workers', '2'],
  ['--io-model', 'thread-per-conn'],
]) {
  test(`out of descriptors (${model.join(' ')}): --service refuses the newcomers, says EMFILE, and serves again once they are gone`, async () => {
    const server = await underLowLimit(['--service', 'echo', ...model]);
    try {
      assert.match(server.stdout(), new RegExp(`open files: ${NOFILE}`), 'the limit in force is announced');
      const sockets = await flood(server.port, 3 * NOFILE);
      // Out of descriptors, a newcomer fails at dup() (EMFILE) or, in thread-per-conn, when the thread it needs cannot start.
      assert.ok(
        await waitFor(() => /(EMFILE|SOCKTUNE_ERR_WORKER_CRASHED) ×\d+/.test(server.stderr()), 10_000),
        `the refusals are reported: ${server.stderr()}`,
      );
      for (const socket of sockets) socket.destroy();
      await Promise.all(sockets.map(closed));
      // Freed descriptors: a new client is served as if nothing happened.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const client = await connectedClient(server.port);
      assert.equal(await echoes(client, 'after the flood'), true);
      client.destroy();
      assert.equal(server.child.exitCode, null, 'the server is still running');
    } finally {
      assert.equal(await server.stop(), 0, server.stderr());
    }
  });
}

test('out of descriptors: the control server keeps answering; a test that cannot open its server fails alone', async () => {
  const server = await underLowLimit([]);
  try {
    const control = await flood(server.port, 3 * NOFILE);
    for (const socket of control) socket.destroy();
    await Promise.all(control.map(closed));
    const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(server.child.exitCode, null);
  } finally {
    assert.equal(await server.stop(), 0, server.stderr());
  }
});

test('control server: data connections of all tests are capped below the open-files limit, so the control port and new tests keep working', async () => {
  const server = await startServer([], (args) =>
    spawn('prlimit', ['--nofile=512:512', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  try {
    // 512 − (128 spare + 4 × 16 tests + 2 × 64 threads + 64 handshakes) = 128, less than half: half of 512.
    assert.ok(
      await waitFor(() => /data connections of all tests together are capped at 256, not 20000/.test(server.stderr()), 5000),
      server.stderr(),
    );
    const conns = await runCli(['conns', '-c', '127.0.0.1', '-p', String(server.port), '--target', '300', '--hold', '3', '--json']);
    const { summary } = JSON.parse(conns.stdout) as { summary: { opened: number } };
    assert.ok(summary.opened <= 300);
    const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3']);
    assert.equal(run.code, 0, `a new test still starts: ${run.stderr}`);
  } finally {
    assert.equal(await server.stop(), 0, server.stderr());
  }
});
