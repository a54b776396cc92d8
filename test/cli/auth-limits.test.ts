import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { authProof, authProofValid } from '../../src/bench/control/auth.ts';
import { Secret } from '../../src/core/secret.ts';
import { ControlServer } from '../../src/bench/servers/control/control-server.ts';
import { ControlChannel } from '../../src/bench/control/control-channel.ts';
import { closed, connectedClient, echoes, waitFor } from '../../testkit/helpers.ts';
import { assertSchema, runCli, startServer, waitForServerEvents } from '../../testkit/cli.ts';

const TOKEN = 'correct horse battery staple';
const SECRET = new Secret(TOKEN);

test('auth proof: HMAC of the nonce and the start message, checked in constant time; the token itself never travels', () => {
  const start = '{"type":"start","service":"echo"}';
  const proof = authProof(SECRET, 'nonce-1', start);
  assert.match(proof, /^[0-9a-f]{64}$/);
  assert.ok(!proof.includes(Buffer.from(TOKEN).toString('hex')));
  assert.equal(authProofValid(SECRET, 'nonce-1', start, proof), true);
  assert.equal(authProofValid(SECRET, 'nonce-2', start, proof), false, 'a proof does not replay on another challenge');
  assert.equal(
    authProofValid(SECRET, 'nonce-1', '{"type":"start","service":"source"}', proof),
    false,
    'a relayed challenge does not authorize other settings',
  );
  assert.equal(authProofValid(new Secret('another token, 16+'), 'nonce-1', start, proof), false);
  assert.equal(authProofValid(SECRET, 'nonce-1', start, proof.slice(0, 10)), false);
  assert.equal(authProofValid(SECRET, 'nonce-1', start, ''), false);
});

test('server --auth-token: no token or a wrong one is SOCKTUNE_ERR_AUTH (exit 3) and logged; the right one runs', async () => {
  const server = await startServer(['--auth-token', TOKEN]);
  try {
    const client = (extra: string[], env: NodeJS.ProcessEnv = {}) =>
      runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', ...extra], 30_000, undefined, env);
    const none = await client([]);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /SOCKTUNE_ERR_AUTH: the server needs an auth token: give it with --auth-token or SOCKTUNE_AUTH_TOKEN/);
    const wrong = await client(['--auth-token', 'not the right token at all']);
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /SOCKTUNE_ERR_AUTH: server: authentication failed/);
    const right = await client([], { SOCKTUNE_AUTH_TOKEN: TOKEN });
    assert.equal(right.code, 0, right.stderr);
    const short = await client(['--auth-token', 'short']);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 16 characters/);
  } finally {
    await server.stop();
  }
  assert.match(server.stderr(), /failed: SOCKTUNE_ERR_AUTH: authentication failed/);
});

test('server limits: a test longer than --max-duration is refused with the limit in the message', async () => {
  const server = await startServer(['--max-duration', '12']);
  try {
    const long = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '5']);
    assert.equal(long.code, 3);
    assert.match(
      long.stderr,
      /SOCKTUNE_ERR_REFUSED: server: the test would last up to 15 s \(its time plus the client's grace\); this server allows at most 12 s/,
    );
    const short = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3']);
    assert.equal(short.code, 0, short.stderr);
  } finally {
    await server.stop();
  }
});

test('server limits: connections over the per-client cap are refused at once; silent ones are cut at the handshake timeout', async () => {
  // Long enough that the silent ones are still there when the client process has started, on a busy machine too.
  const server = new ControlServer({ port: 0, maxTestsPerPeer: 2, handshakeTimeoutMs: 5000 });
  const { port } = (await server.listen()) as { port: number };
  try {
    // They read (and drop) what comes, so they see the server's end.
    const silent = await Promise.all([0, 1].map(() => connectedClient(port).then((socket) => socket.resume())));
    const refused = await runCli(['rr', '-c', '127.0.0.1', '-p', String(port), '-t', '0.3']);
    assert.equal(refused.code, 3);
    assert.match(
      refused.stderr,
      /SOCKTUNE_ERR_REFUSED: server: too many connections from 127\.0\.0\.1: 2 open \(max 2 per client address\)/,
    );
    const started = Date.now();
    await Promise.all(silent.map((socket) => closed(socket)));
    assert.ok(Date.now() - started < 15_000, 'a client that never sends its start message is closed after the handshake timeout');
    const after = await runCli(['rr', '-c', '127.0.0.1', '-p', String(port), '-t', '0.3']);
    assert.equal(after.code, 0, after.stderr);
  } finally {
    await server.close();
  }
});

test('control channel: a peer that floods messages without waiting for answers is cut off', async () => {
  const accepted = new Promise<net.Socket>((resolve) => {
    const listener = net.createServer((socket) => {
      listener.close();
      resolve(socket);
    });
    listener.listen(
      0,
      '127.0.0.1',
      () =>
        void connectedClient((listener.address() as net.AddressInfo).port).then((client) =>
          client.end(`${'{"type":"finish"}\n'.repeat(50)}`),
        ),
    );
  });
  const socket = await accepted;
  const channel = new ControlChannel(socket);
  await new Promise((resolve) => socket.once('data', resolve));
  await assert.rejects(channel.next(1000, 'message'), /more than 4 control messages sent without waiting for an answer/);
  socket.destroy();
});

test('server --service: connections over --max-connections are closed, and the server logs them within a second', async () => {
  const server = await startServer(['--service', 'echo', '--max-connections', '1', '--json']);
  try {
    const held = await connectedClient(server.port);
    assert.equal(await echoes(held, 'x'), true);
    for (const _ of [0, 1]) assert.equal(await echoes(await connectedClient(server.port), 'x'), false);
    const [logged] = await waitForServerEvents<{ errors: Record<string, number> }>(server, 'errors', 1, 5000);
    assert.ok(logged, server.stdout());
    assertSchema(logged);
    assert.equal(logged.errors.SOCKTUNE_ERR_MAX_CONNECTIONS, 2);
    held.destroy();
  } finally {
    await server.stop();
  }
  const human = await startServer(['--service', 'echo', '--max-connections', '1']);
  try {
    const held = await connectedClient(human.port);
    await echoes(held, 'x');
    await echoes(await connectedClient(human.port), 'x');
    assert.ok(
      await waitFor(() => /connections refused or closed on errors: SOCKTUNE_ERR_MAX_CONNECTIONS ×1/.test(human.stderr())),
      human.stderr(),
    );
    held.destroy();
  } finally {
    await human.stop();
  }
});
