import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader } from '../../../../src/framing/byte-reader.ts';
import { withTimeout } from '../../../../src/core/timeout.ts';
import { SocktuneError } from '../../../../src/core/errors.ts';
import { Iperf3Server, type Iperf3TestLog } from '../../../../src/bench/servers/iperf3/iperf3-server.ts';
import { encodeJson, generateCookie, IPERF3_ERRNO, STATE } from '../../../../src/protocols/iperf3/codec.ts';
import { Iperf3Authenticator } from '../../../../src/bench/servers/iperf3/authenticator.ts';
import { encodeAuthToken, parseAuthorizedUsers, passwordHash } from '../../../../src/protocols/iperf3/auth-token.ts';
import { run, waitFor } from '../../../../testkit/helpers.ts';

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));
const skip = haveIperf3 ? false : 'iperf3 is not installed (.ci/run installs it)';

const escaped: unknown[] = [];
process.on('uncaughtException', (error) => escaped.push(error));
process.on('unhandledRejection', (error) => escaped.push(error));

/** One RSA pair for the whole file: iperf3 3.12 reads a "PUBLIC KEY" (SPKI) for the client and a PKCS#8 or PKCS#1 private key. */
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const PRIVATE_PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const PUBLIC_SPKI = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const USERS = [
  '# socktune test users',
  `alice,${passwordHash('alice', 'right-horse')}`,
  '',
  `bob,${passwordHash('bob', 'battery')}`,
  'no comma here',
  '',
].join('\r\n');

const now = (): number => Math.floor(Date.now() / 1000);

/** A connection to a server on loopback from `localAddress`, everything it receives going to a reader that ends with it. */
function connectReading(port: number, localAddress = '127.0.0.1'): { socket: net.Socket; reader: ByteReader } {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const reader = new ByteReader();
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('close', () => reader.end());
  socket.on('error', () => reader.end());
  return { socket, reader };
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Other base64 spellings of the same bytes as a canonical `token` of a 256-byte key (256 % 3 = 1: "xy==", 4 unused bits in y). */
function otherSpellings(token: string): string[] {
  assert.ok(token.endsWith('==') && !token.endsWith('==='));
  const core = token.slice(0, -2);
  const last = BASE64_ALPHABET.indexOf(core.at(-1)!);
  const otherBits = [1, 2, 15].map((bits) => `${core.slice(0, -1)}${BASE64_ALPHABET[(last & ~0xf) | bits]}==`);
  return [core, `${core}=`, ...otherBits];
}

describe("Iperf3Authenticator: iperf3 3.12's token, checked with node:crypto", () => {
  const authenticator = new Iperf3Authenticator({ privateKey: PRIVATE_PKCS8, authorizedUsers: USERS });
  const token = (user: string, password: string, timestamp = now(), key: KeyObject = publicKey): string =>
    encodeAuthToken({ user, password, timestamp }, key);

  test('the users file: comments, blank lines and lines without a comma are skipped, CRLF is stripped', () => {
    const users = parseAuthorizedUsers(`${USERS}\ncarol,,${'a'.repeat(64)},extra\n`);
    assert.deepEqual([...users.keys()], ['alice', 'bob', 'carol']);
    assert.deepEqual([...users.get('carol')!], ['a'.repeat(64)]);
    // What `echo -n '{alice}secret' | sha256sum` prints.
    assert.equal(passwordHash('alice', 'secret'), '27b307f21eb6137ab56a3c80a93a5db840e79a697f80f3381c87edaa79a83f6f');
  });

  test('the right password passes once; wrong password, unknown user, stale or replayed tokens and junk are SOCKTUNE_ERR_AUTH', () => {
    // Each token is made just before its check: a second passing between the two would change the clock difference it reports.
    const strangerKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const good = token('bob', 'battery');
    assert.equal(authenticator.verify(good), 'bob');
    const refusals: [() => unknown, RegExp][] = [
      [() => good, /already used/],
      [() => token('bob', 'wrong'), /unknown user "bob" or wrong password/],
      [() => token('mallory', 'battery'), /unknown user "mallory"/],
      [() => token('bob', 'battery', now() - 60), /60 s off the server's clock \(max 10 s\)/],
      [() => token('bob', 'battery', now() + 60), /60 s off/],
      // Another key's ciphertext is below its own modulus, not always below ours: either refusal is right.
      [() => token('bob', 'battery', now(), strangerKey), /does not decrypt|not below the server key's modulus/],
      [() => token('bob', 'bat tery'), /white space is refused/],
      [() => undefined, /sent no authtoken/],
      [() => ({ user: 'bob' }), /not a base64 string/],
      [() => '!!!', /not a base64 string/],
      [() => 'QUJD', /3 bytes, not the 256/],
      [() => Buffer.alloc(256, 7).toString('base64'), /does not decrypt/],
    ];
    for (const [make, reason] of refusals) {
      const bad = make();
      assert.throws(
        () => authenticator.verify(bad),
        (error: unknown) => error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_AUTH' && reason.test(error.message),
        String(bad),
      );
    }
  });

  test('review 2: only the canonical base64 spelling is taken, and a token is spent by its plaintext, not its spelling', () => {
    const fresh = new Iperf3Authenticator({ privateKey: PRIVATE_PKCS8, authorizedUsers: USERS });
    const timestamp = now();
    const canonical = token('alice', 'right-horse', timestamp);
    const isAuthError = (reason: RegExp) => (error: unknown) =>
      error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_AUTH' && reason.test(error.message);
    for (const spelling of otherSpellings(canonical)) {
      assert.deepEqual(Buffer.from(spelling, 'base64'), Buffer.from(canonical, 'base64'), spelling.slice(-4));
      assert.throws(() => fresh.verify(spelling), isAuthError(/not canonical base64/), spelling.slice(-4));
    }
    // The refused spellings spent nothing: the token works, once.
    assert.equal(fresh.verify(canonical), 'alice');
    assert.throws(() => fresh.verify(canonical), isAuthError(/already used/));
    // PKCS#1 v1.5 padding is random: the same text under the public key is another ciphertext, and a replay all the same.
    const sameText = token('alice', 'right-horse', timestamp);
    assert.notEqual(sameText, canonical);
    assert.throws(() => fresh.verify(sameText), isAuthError(/already used/));
    assert.equal(fresh.verify(token('alice', 'right-horse', timestamp - 1)), 'alice');
  });

  test('a PKCS#1 private key works too; a non-RSA or encrypted key, or a missing users text, is an invalid option', () => {
    const pkcs1 = new Iperf3Authenticator({ privateKey: Buffer.from(PRIVATE_PKCS1), authorizedUsers: USERS, timeSkewThresholdSec: 30 });
    assert.equal(pkcs1.verify(token('alice', 'right-horse', now() - 20)), 'alice');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const encrypted = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
    assert.throws(() => new Iperf3Authenticator({ privateKey: ec, authorizedUsers: USERS }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.auth\.privateKey must be an RSA key/,
    });
    assert.throws(() => new Iperf3Authenticator({ privateKey: encrypted, authorizedUsers: USERS }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.auth\.privateKey must be an unencrypted PEM private key/,
    });
    assert.throws(() => new Iperf3Server({ auth: { privateKey: PRIVATE_PKCS8 } as never }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.auth\.authorizedUsers must be a string/,
    });
    assert.throws(() => new Iperf3Server({ auth: { privateKey: PRIVATE_PKCS8, authorizedUsers: USERS, timeSkewThresholdSec: 0 } }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.auth\.timeSkewThresholdSec/,
    });
  });
});

describe('stock iperf3 clients against Iperf3Server({ auth })', { skip }, () => {
  let server: Iperf3Server;
  let port = 0;
  let dir = '';
  const logs: Iperf3TestLog[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'socktune-iperf3-auth-'));
    writeFileSync(join(dir, 'public.pem'), PUBLIC_SPKI);
    // These tests fail on purpose many times from one address: the backoff has a test of its own below.
    server = new Iperf3Server({
      port: 0,
      auth: { privateKey: PRIVATE_PKCS8, authorizedUsers: USERS },
      authBackoff: { freeFailures: 1000 },
    });
    server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
    const address = await server.listen();
    port = address.family === 'unix' ? 0 : address.port;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The stock client, its password from IPERF3_PASSWORD as iperf3 reads it (no terminal prompt). */
  async function client(
    credentials: { user: string; password: string } | undefined,
    serverPort = port,
  ): Promise<{ code: number; error: string | undefined }> {
    const auth = credentials ? ['--username', credentials.user, '--rsa-public-key-path', join(dir, 'public.pem')] : [];
    const env = { ...process.env, ...(credentials ? { IPERF3_PASSWORD: credentials.password } : {}) };
    const result = await run('iperf3', ['-c', '127.0.0.1', '-p', String(serverPort), '-J', '-t', '1', ...auth], {
      timeout: 30_000,
      env,
    }).then(
      (output) => ({ code: 0, stdout: output.stdout }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    return { code: result.code, error: (JSON.parse(result.stdout) as { error?: string }).error };
  }

  test('the right password: the test runs', { timeout: 60_000 }, async () => {
    const result = await client({ user: 'alice', password: 'right-horse' });
    assert.equal(result.code, 0, result.error);
    assert.equal(logs.at(-1)?.outcome, 'done');
  });

  test(
    'wrong password, unknown user, no credentials: "test authorization failed", and the server keeps serving',
    { timeout: 90_000 },
    async () => {
      const attempts: [{ user: string; password: string } | undefined, RegExp][] = [
        [{ user: 'alice', password: 'wrong-horse' }, /unknown user "alice" or wrong password/],
        [{ user: 'mallory', password: 'right-horse' }, /unknown user "mallory"/],
        [undefined, /sent no authtoken/],
      ];
      for (const [credentials, reason] of attempts) {
        const seen = logs.length;
        const result = await client(credentials);
        assert.match(result.error ?? '', /test authorization failed/);
        assert.equal(logs[seen]?.outcome, 'refused');
        assert.match(logs[seen]?.error ?? '', /^SOCKTUNE_ERR_AUTH: iperf3 authentication failed: /);
        assert.match(logs[seen]?.error ?? '', reason);
      }
      const again = await client({ user: 'bob', password: 'battery' });
      assert.equal(again.code, 0, again.error);
      assert.equal(server.activeTests, 0);
    },
  );

  test("an authtoken that is not a string gets the same SERVER_ERROR as iperf3's server sends", { timeout: 30_000 }, async () => {
    for (const authtoken of [{}, 42, 'A'.repeat(60_000)]) {
      const { socket, reader } = connectReading(port);
      try {
        socket.write(generateCookie());
        assert.equal((await withTimeout(reader.read(1), 5000, 'PARAM_EXCHANGE')).readInt8(0), STATE.PARAM_EXCHANGE);
        socket.write(encodeJson({ tcp: true, time: 1, parallel: 1, len: 131072, authtoken }));
        const reply = await withTimeout(reader.read(9), 5000, 'SERVER_ERROR');
        assert.deepEqual([reply.readInt8(0), reply.readInt32BE(1)], [STATE.SERVER_ERROR, IPERF3_ERRNO.AUTH_TEST]);
      } finally {
        socket.destroy();
      }
    }
    assert.deepEqual(escaped.map(String), []);
  });

  /** Cookie, parameters with `authtoken`, and the server's answer: CREATE_STREAMS, or SERVER_ERROR with its i_errno. */
  async function rawAttempt(
    authtoken: unknown,
    serverPort = port,
    localAddress = '127.0.0.1',
    hold = false,
  ): Promise<{ state: number; iperfErrno?: number; socket: net.Socket }> {
    const { socket, reader } = connectReading(serverPort, localAddress);
    try {
      socket.write(generateCookie());
      assert.equal((await withTimeout(reader.read(1), 5000, 'PARAM_EXCHANGE')).readInt8(0), STATE.PARAM_EXCHANGE);
      if (hold) return { state: STATE.PARAM_EXCHANGE, socket };
      socket.write(encodeJson({ tcp: true, time: 1, parallel: 1, len: 131072, authtoken }));
      const state = (await withTimeout(reader.read(1), 5000, 'the answer to the parameters')).readInt8(0);
      if (state !== STATE.SERVER_ERROR) return { state, socket };
      return { state, iperfErrno: (await withTimeout(reader.read(8), 5000, 'SERVER_ERROR numbers')).readInt32BE(0), socket };
    } finally {
      if (!hold) socket.destroy();
    }
  }

  test(
    'review 2: another spelling of a captured token is refused, and so is the token itself the second time',
    { timeout: 30_000 },
    async () => {
      const canonical = encodeAuthToken({ user: 'bob', password: 'battery', timestamp: now() }, publicKey);
      for (const spelling of otherSpellings(canonical)) {
        const seen = logs.length;
        const answer = await rawAttempt(spelling);
        assert.deepEqual([answer.state, answer.iperfErrno], [STATE.SERVER_ERROR, IPERF3_ERRNO.AUTH_TEST], spelling.slice(-4));
        assert.ok(await waitFor(() => logs.length > seen, 5000));
        assert.match(logs[seen]?.error ?? '', /not canonical base64/);
      }
      assert.equal((await rawAttempt(canonical)).state, STATE.CREATE_STREAMS);
      const seen = logs.length;
      for (const spelling of [canonical, ...otherSpellings(canonical)]) {
        const answer = await rawAttempt(spelling);
        assert.deepEqual([answer.state, answer.iperfErrno], [STATE.SERVER_ERROR, IPERF3_ERRNO.AUTH_TEST], spelling.slice(-4));
      }
      assert.ok(await waitFor(() => logs.length >= seen + 6, 5000));
      assert.match(
        logs
          .slice(seen)
          .map((entry) => entry.error)
          .join('\n'),
        /already used/,
      );
      assert.deepEqual(escaped.map(String), []);
    },
  );

  test(
    'review 2: clients that never authenticate hold no test; an authenticated client gets the only slot',
    { timeout: 60_000 },
    async () => {
      const small = new Iperf3Server({
        port: 0,
        maxTests: 1,
        maxTestsPerClient: 1,
        parametersTimeoutMs: 20_000,
        auth: { privateKey: PRIVATE_PKCS8, authorizedUsers: USERS },
      });
      const smallLogs: Iperf3TestLog[] = [];
      small.on('test', (entry: Iperf3TestLog) => smallLogs.push(entry));
      const smallPort = ((await small.listen()) as net.AddressInfo).port;
      const holders: net.Socket[] = [];
      try {
        // Two addresses, each its full pending share, waiting with no parameters (so no authtoken either).
        for (const address of ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3'])
          holders.push((await rawAttempt(undefined, smallPort, address, true)).socket);
        // And clients whose tokens fail, one after another.
        for (let i = 0; i < 5; i++) {
          const answer = await rawAttempt(Buffer.alloc(256, i).toString('base64'), smallPort, '127.0.0.4');
          assert.deepEqual([answer.state, answer.iperfErrno], [STATE.SERVER_ERROR, IPERF3_ERRNO.AUTH_TEST]);
        }
        assert.equal(small.activeTests, 0);
        assert.equal(small.pendingConnections, 4);
        const result = await client({ user: 'alice', password: 'right-horse' }, smallPort);
        assert.equal(result.code, 0, result.error);
        assert.equal(smallLogs.at(-1)?.outcome, 'done');
      } finally {
        holders.forEach((socket) => socket.destroy());
        await small.close();
      }
      assert.deepEqual(escaped.map(String), []);
    },
  );

  test(
    'failed authentication: answered later each time, then refused before any RSA work; another address and the right token are served meanwhile',
    { timeout: 60_000 },
    async () => {
      const guarded = new Iperf3Server({
        port: 0,
        auth: { privateKey: PRIVATE_PKCS8, authorizedUsers: USERS },
        authBackoff: { freeFailures: 1, baseDelayMs: 200, maxDelayMs: 400, blockAfter: 4, blockMs: 60_000 },
      });
      const guardedLogs: Iperf3TestLog[] = [];
      guarded.on('test', (entry: Iperf3TestLog) => guardedLogs.push(entry));
      const guardedPort = ((await guarded.listen()) as net.AddressInfo).port;
      try {
        const junk = Buffer.alloc(256, 7).toString('base64');
        const answered: number[] = [];
        for (let i = 0; i < 4; i++) {
          const before = performance.now();
          const answer = await rawAttempt(junk, guardedPort, '127.0.0.5');
          answered.push(performance.now() - before);
          assert.deepEqual([answer.state, answer.iperfErrno], [STATE.SERVER_ERROR, IPERF3_ERRNO.AUTH_TEST]);
        }
        // The second and later failures waited at least their delay (a lower bound: never a speed).
        assert.ok(
          answered.slice(1).every((ms) => ms >= 190),
          `answer times ${answered.map(Math.round).join(', ')} ms`,
        );
        // Blocked: ACCESS_DENIED before the parameters, so no token is read and no RSA decryption runs.
        const { socket, reader } = connectReading(guardedPort, '127.0.0.5');
        socket.write(generateCookie());
        assert.equal((await withTimeout(reader.read(1), 5000, 'ACCESS_DENIED')).readInt8(0), STATE.ACCESS_DENIED);
        socket.destroy();
        assert.ok(
          await waitFor(
            () => guardedLogs.some((entry) => /too many failed authentications from 127\.0\.0\.5/.test(entry.error ?? '')),
            5000,
          ),
        );
        assert.equal(guardedLogs.at(-1)?.client, '127.0.0.5');
        // Someone else, with the right token, is served.
        const good = await rawAttempt(
          encodeAuthToken({ user: 'bob', password: 'battery', timestamp: now() }, publicKey),
          guardedPort,
          '127.0.0.6',
        );
        assert.equal(good.state, STATE.CREATE_STREAMS);
      } finally {
        await guarded.close();
      }
      assert.deepEqual(escaped.map(String), []);
    },
  );

  test('a ciphertext not below the modulus is refused without decrypting', () => {
    const authenticator = new Iperf3Authenticator({ privateKey: PRIVATE_PKCS8, authorizedUsers: USERS });
    assert.throws(() => authenticator.verify(Buffer.alloc(256, 0xff).toString('base64')), /not below the server key's modulus/);
  });

  test(
    'connections that send a cookie and leave spend no RSA budget and count as failures: good clients are served meanwhile',
    { timeout: 60_000 },
    async () => {
      const guarded = new Iperf3Server({ port: 0, maxAuthPerSecond: 4, auth: { privateKey: PRIVATE_PKCS8, authorizedUsers: USERS } });
      const guardedPort = ((await guarded.listen()) as net.AddressInfo).port;
      const cookieAndLeave = async (): Promise<number> => {
        const { socket, reader } = connectReading(guardedPort, '127.0.0.9');
        try {
          socket.write(generateCookie());
          return (await withTimeout(reader.read(1), 5000, 'the first state')).readInt8(0);
        } finally {
          socket.destroy();
        }
      };
      try {
        const states: number[] = [];
        // Bounded: 40 cookies, two at a time (the pending share of one address), then the real clients.
        for (let i = 0; i < 20; i++) states.push(...(await Promise.all([cookieAndLeave(), cookieAndLeave()])));
        assert.ok(states.includes(STATE.ACCESS_DENIED), 'an address that keeps leaving before its parameters is refused at the cookie');
        for (let i = 0; i < 3; i++) {
          const good = await rawAttempt(
            encodeAuthToken({ user: 'bob', password: 'battery', timestamp: now() + i }, publicKey),
            guardedPort,
            '127.0.0.10',
          );
          assert.equal(good.state, STATE.CREATE_STREAMS, 'a good client is served: cookies spent none of the 4 decryptions a second');
        }
      } finally {
        await guarded.close();
      }
      assert.deepEqual(escaped.map(String), []);
    },
  );
});
