import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIN, runCli, startServer } from '../../testkit/cli.ts';
import { runProcess } from '../../testkit/helpers.ts';
import { startCorruptingProxy } from '../../testkit/corrupting-proxy.ts';

test('--verify finds one flipped byte server→client (-R): reports it and exits 4', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startCorruptingProxy(server.port, 'to-client', 1_000_003);
  t.after(() => proxy.close());
  const result = await runCli(['stream', '-c', '127.0.0.1', '-p', String(proxy.port), '-t', '0.5', '-R', '--verify', '--json']);
  assert.equal(result.code, 4, result.stderr);
  const { summary } = JSON.parse(result.stdout);
  assert.equal(summary.verify.bytesCorrupted, 1);
  assert.equal(summary.verify.bytesLost, 0);
});

test('--verify finds one flipped byte client→server (forward, checked by the server)', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startCorruptingProxy(server.port, 'to-server', 2_000_000);
  t.after(() => proxy.close());
  const result = await runCli(['stream', '-c', '127.0.0.1', '-p', String(proxy.port), '-t', '0.5', '--verify']);
  assert.equal(result.code, 4, result.stderr);
  assert.match(result.stdout, /verify {5}\S+ \S+ checked, 1 bytes corrupted, 0 bytes lost/);
});

test('without corruption the same path through the proxy verifies clean', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startCorruptingProxy(server.port, 'to-client', Number.MAX_SAFE_INTEGER);
  t.after(() => proxy.close());
  const result = await runCli(['stream', '-c', '127.0.0.1', '-p', String(proxy.port), '-t', '0.5', '-R', '--verify', '--json']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).summary.verify.bytesCorrupted, 0);
});

/** The first --ndjson interval line: the test is under way. */
const MEASURING = /"type":"interval"/;

test('the server vanishes mid-test: the client stops at once with SOCKTUNE_ERR_PEER_GONE, exit 3', async () => {
  const server = await startServer();
  const started = Date.now();
  const result = await runProcess(
    process.execPath,
    [BIN, 'stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '30', '-i', '0.1', '--ndjson'],
    {
      timeoutMs: 60_000,
      onOutput: ({ stdout }) => {
        if (MEASURING.test(stdout) && server.child.exitCode === null) server.child.kill('SIGKILL');
      },
    },
  );
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /SOCKTUNE_ERR_PEER_GONE/);
  assert.ok(Date.now() - started < 15_000, 'the client noticed long before its 30 s were up');
});

test('a client vanishes mid-test: the server ends that test and keeps serving others', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const doomed = await runProcess(
    process.execPath,
    [BIN, 'rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '30', '-C', '4', '-i', '0.1', '--ndjson'],
    {
      timeoutMs: 60_000,
      onOutput: ({ stdout, child }) => {
        if (MEASURING.test(stdout)) child.kill('SIGKILL');
      },
    },
  );
  assert.equal(doomed.code, null, 'killed in the middle of its test');
  const healthy = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.5', '--json']);
  assert.equal(healthy.code, 0, healthy.stderr);
  // The server logs the abandoned test as failed once it notices the control connection is gone.
  for (let i = 0; i < 50 && !/failed: SOCKTUNE_ERR_PEER_GONE/.test(server.stderr()); i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  assert.match(server.stderr(), /echo \(loop\) failed: SOCKTUNE_ERR_PEER_GONE/);
});

test('a stranger sending garbage to the control port gets an error line, and the server carries on', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { connect } = await import('node:net');
  const socket = connect({ port: server.port, host: '127.0.0.1' });
  socket.write('GET / HTTP/1.1\r\n\r\n');
  const reply = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('close', () => resolve(text));
  });
  assert.match(reply, /"type":"error","code":"SOCKTUNE_ERR_PROTOCOL"/);
  const after = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '--json']);
  assert.equal(after.code, 0, after.stderr);
});
