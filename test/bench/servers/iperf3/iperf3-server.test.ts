import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { Iperf3Server, type Iperf3TestLog } from '../../../../src/bench/servers/iperf3/iperf3-server.ts';
import { COOKIE_BYTES, encodeJson, generateCookie } from '../../../../src/protocols/iperf3/codec.ts';
import { run, waitFor, waitForListening } from '../../../../testkit/helpers.ts';
import { assertSchema, BIN, runCli } from '../../../../testkit/cli.ts';

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));
const skip = haveIperf3 ? false : 'iperf3 is not installed (.ci/run installs it)';

interface Iperf3Json {
  end: {
    sum_sent: { bytes: number; seconds: number };
    sum_received: { bytes: number; seconds: number };
    sum_sent_bidir_reverse?: { bytes: number };
    sum_received_bidir_reverse?: { bytes: number };
  };
  server_output_text?: string;
  error?: string;
}

async function iperf3Client(port: number, args: string[]): Promise<{ code: number; json: Iperf3Json }> {
  const result = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-J', ...args], { timeout: 60_000 }).then(
    (output) => ({ code: 0, stdout: output.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: result.code, json: JSON.parse(result.stdout) as Iperf3Json };
}

function startIperf3Server(extra: string[] = []): Promise<{ port: number; child: ChildProcess; log: () => string; stdout: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'server', '--iperf3', '-p', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const timer = setTimeout(() => reject(new Error('no listening line')), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on [\d.]+:(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ port: Number(match[1]), child, log: () => log, stdout: () => stdout });
      }
    });
  });
}

describe('stock iperf3 clients against socktune server --iperf3', { skip }, () => {
  let server: Awaited<ReturnType<typeof startIperf3Server>>;
  before(async () => {
    server = await startIperf3Server();
  });
  after(() => server.child.kill('SIGTERM'));

  const cases: [string, string[]][] = [
    ['default', ['-t', '1']],
    ['-n 100M', ['-n', '100M']],
    ['-k 2000', ['-k', '2000']],
    ['-P 4', ['-t', '1', '-P', '4']],
    ['-w 64K', ['-t', '1', '-w', '64K']],
    ['-l 1K -N', ['-t', '1', '-l', '1K', '-N']],
  ];
  for (const [name, args] of cases) {
    test(`${name}: exit 0, and the server received every byte the client sent`, async () => {
      const { code, json } = await iperf3Client(server.port, args);
      assert.equal(code, 0, json.error);
      assert.ok(json.end.sum_sent.bytes > 0);
      assert.equal(json.end.sum_received.bytes, json.end.sum_sent.bytes);
      // The server counted from its TEST_RUNNING to the client's TEST_END, which frame the client's own
      // sending time: the receiver's time is never the shorter, so its rate is never the higher (with -n
      // the server used to report -t's 0 s, and a late TEST_END made it count more bytes into -t's second).
      const { sum_sent: sent, sum_received: received } = json.end;
      assert.ok(received.seconds >= sent.seconds - 1e-3, `received over ${received.seconds} s, sent over ${sent.seconds} s`);
    });
  }

  test('-R, --bidir and -O: both sides count within the bytes in flight at TEST_END (or at the end of --omit)', async () => {
    for (const args of [
      ['-R', '-t', '1'],
      ['--bidir', '-t', '1', '-P', '2'],
      ['-t', '1', '-O', '1'],
    ]) {
      const { code, json } = await iperf3Client(server.port, args);
      assert.equal(code, 0, json.error);
      const { sum_sent: sent, sum_received: received } = json.end;
      assert.ok(sent.bytes > 0 && received.bytes > 0);
      // iperf3's client stops reading when it sends TEST_END; what was in flight (each stream's socket buffers) is not counted.
      const streams = args.includes('-P') ? Number(args[args.indexOf('-P') + 1]) : 1;
      // With -O each end ends its warm-up on a timer of its own: on a busy machine they fire tens of ms
      // apart (26 MB at 4.6 Gbit/s was 45 ms), so the bytes of 200 ms at the test's rate are allowed too.
      const omitSkew = args.includes('-O') ? (sent.bytes / sent.seconds) * 0.2 : 0;
      assert.ok(
        Math.abs(sent.bytes - received.bytes) <= Math.max(sent.bytes * 0.02, streams * 16 * 1024 * 1024) + omitSkew,
        `${args.join(' ')}: ${sent.bytes} vs ${received.bytes}`,
      );
    }
  });

  test("--get-server-output carries socktune's report", async () => {
    const { code, json } = await iperf3Client(server.port, ['-t', '1', '--get-server-output']);
    assert.equal(code, 0);
    assert.match(json.server_output_text ?? '', /socktune iperf3 server: test, 1 stream\(s\)\n\[ {2}1\] receiver \d+ bytes/);
  });

  test("two stock clients at the same time both complete (iperf3's own server would refuse one)", async () => {
    const [a, b] = await Promise.all([iperf3Client(server.port, ['-t', '1']), iperf3Client(server.port, ['-t', '1', '-R'])]);
    assert.equal(a.code, 0, a.json.error);
    assert.equal(b.code, 0, b.json.error);
  });

  test('SCTP is refused with SERVER_ERROR, and the server says why', async (t) => {
    // A server of its own: the shared one's log folds a client's lines past five in ten seconds, and the tests above may have filled them.
    const own = await startIperf3Server();
    t.after(() => own.child.kill('SIGTERM'));
    const sctp = await iperf3Client(own.port, ['--sctp', '-t', '1']);
    assert.match(sctp.json.error ?? '', /no SCTP support available/);
    // The client may print its error before the server's log line is written: wait for the line.
    await waitFor(() => /failed: SOCKTUNE_ERR_PROTOCOL: iperf3 client asked for SCTP/.test(own.log()), 10_000);
    assert.match(own.log(), /failed: SOCKTUNE_ERR_PROTOCOL: iperf3 client asked for SCTP/);
  });
});

test('over --max-tests, a second stock client is told the server is busy', { skip }, async () => {
  const server = await startIperf3Server(['--max-tests', '1']);
  try {
    const first = iperf3Client(server.port, ['-t', '2']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const second = await iperf3Client(server.port, ['-t', '1']);
    assert.match(second.json.error ?? '', /busy/);
    assert.equal((await first).code, 0);
  } finally {
    server.child.kill('SIGTERM');
  }
});

test(
  'review 2: --max-per-ip reaches the transport; refusals from one client print 5 lines, the rest one summary line by client and code',
  { skip },
  async () => {
    const server = await startIperf3Server(['--max-per-ip', '50', '--max-connections', '1000', '--max-total-streams', '64']);
    const sockets: net.Socket[] = [];
    try {
      assert.match(server.stdout(), /up to 4 tests at once, 2 per client/);
      // 60 connections that send nothing, all at once: 2 wait for their cookie, 48 are told "busy", and 10 are over --max-per-ip.
      const seen = { denied: 0, closedSilently: 0 };
      for (let i = 0; i < 60; i++) {
        const socket = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
        let bytes = 0;
        socket.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (chunk[0] === 0xff) seen.denied++;
        });
        let ended = false;
        const onEnd = (): void => {
          if (!ended && bytes === 0) seen.closedSilently++;
          ended = true;
        };
        socket.once('end', onEnd);
        socket.once('close', onEnd);
        socket.on('error', () => {});
        sockets.push(socket);
      }
      assert.ok(await waitFor(() => seen.denied === 48 && seen.closedSilently === 10, 10_000), JSON.stringify(seen));
      // The window's summary comes at its end or when the server stops: stop it now.
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
      const log = server.log();
      const listed = log.match(/^iperf3 test from \S+: refused: SOCKTUNE_ERR_REFUSED: /gm)?.length ?? 0;
      const summary = /^… (\d+) more from 127\.0\.0\.1 in the last 10 s: SOCKTUNE_ERR_REFUSED ×(\d+)$/m.exec(log);
      assert.equal(listed, 5, log);
      assert.ok(summary, log);
      assert.equal(listed + Number(summary[2]), 48, 'every refusal is listed or counted');
    } finally {
      sockets.forEach((socket) => socket.destroy());
      server.child.kill('SIGTERM');
    }
  },
);

describe('socktune stream --iperf3 against stock iperf3 -s', { skip }, () => {
  const cases: [string, string[]][] = [
    ['default', []],
    ['-R', ['-R']],
    ['--bidir', ['--bidir']],
    ['-P 4', ['-P', '4']],
    ['-w 64K', ['-w', '64K']],
    ['-n 20M', ['-n', '20M']],
    ['-R -n 20M', ['-R', '-n', '20M']],
    ['-R -b 40M', ['-R', '-b', '40M']],
  ];
  for (const [name, args] of cases) {
    test(`${name}: exit 0, socktune's schema, and the iperf3 server's own counts`, async () => {
      // Below the ephemeral range (32768+), so no outgoing connection holds it.
      const port = 20000 + Math.floor(Math.random() * 10000);
      const server = spawn('iperf3', ['-s', '-1', '-p', String(port), '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let serverJson = '';
      server.stdout.on('data', (chunk: Buffer) => (serverJson += chunk.toString()));
      const serverDone = new Promise((resolve) => server.once('exit', resolve));
      try {
        await waitForListening(port);
        const result = await runCli([
          'stream',
          '--iperf3',
          '-c',
          '127.0.0.1',
          '-p',
          String(port),
          ...(args.includes('-n') ? [] : ['-t', '1']),
          '--json',
          ...args,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const document = JSON.parse(result.stdout);
        assertSchema(document);
        await serverDone;
        const reported = (JSON.parse(serverJson) as Iperf3Json).end;
        const { summary } = document;
        // A line per stream, as iperf3 prints them: -P 4 has four, --bidir one each way.
        const streams = (args.includes('-P') ? 4 : 1) * (args.includes('--bidir') ? 2 : 1);
        for (const interval of document.intervals) assert.equal(interval.streams.length, streams, JSON.stringify(interval));
        if (args.includes('-R')) assert.equal(summary.sender.bytes, reported.sum_sent.bytes);
        else assert.equal(summary.receiver.bytes, reported.sum_received.bytes);
        // -n: the client sends exactly that much; iperf3's server counts what it read before it saw TEST_END.
        if (args.includes('-n')) {
          const sent = args.includes('-R') ? summary.receiver.bytes : summary.sender.bytes;
          assert.equal(sent, 20 * 1024 * 1024);
          assert.ok(summary.receiver.bytes <= summary.sender.bytes);
        }
        assert.ok(summary.bitsPerSecond > 0);
        // -b travels as iperf3's own `bandwidth`: the stock server paces what it sends (a slow machine only lowers it).
        if (args.includes('-b')) assert.ok(summary.bitsPerSecond <= 40e6 * 1.3, `${summary.bitsPerSecond} bit/s`);
      } finally {
        server.kill();
      }
    });
  }
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('malformed input: each test torn down with a SOCKTUNE_ERR_* line, the server keeps serving, nothing leaks', () => {
  let server: Iperf3Server;
  let port = 0;
  const logs: Iperf3TestLog[] = [];
  let fdsBefore = 0;
  let handlesBefore = 0;
  before(async () => {
    server = new Iperf3Server({ port: 0, cookieTimeoutMs: 1000, parametersTimeoutMs: 1000 });
    server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
    port = ((await server.listen()) as net.AddressInfo).port;
    fdsBefore = openFds();
    handlesBefore = process.getActiveResourcesInfo().length;
  });
  after(() => server.close());

  /** Sends bytes as a client would, then waits for the server's log line about it. */
  async function expectFailure(bytes: Buffer[], error: RegExp, vanish = false): Promise<void> {
    const seen = logs.length;
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.resume();
    await new Promise((resolve) => socket.once('connect', resolve));
    for (const chunk of bytes) socket.write(chunk);
    const waitBeforeClosing = vanish ? 4 : 50;
    for (let i = 0; i < waitBeforeClosing && logs.length === seen; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    for (let i = 0; i < 50 && logs.length === seen; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const entry = logs[seen];
    assert.equal(entry?.outcome, 'failed');
    assert.match(entry?.error ?? '', /^SOCKTUNE_ERR_[A-Z_]+: /);
    assert.match(entry?.error ?? '', error);
  }
  const lengthPrefix = (length: number): Buffer => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(length);
    return prefix;
  };

  test('a cookie that never completes', () => expectFailure([Buffer.from('short cookie')], /SOCKTUNE_ERR_TIMEOUT: no iperf3 cookie/));
  test('garbage where the parameters JSON should be', () =>
    expectFailure([generateCookie(), lengthPrefix(5), Buffer.from('hello')], /SOCKTUNE_ERR_PROTOCOL: iperf3 control message is not JSON/));
  test('a JSON length over 64 KiB', () => expectFailure([generateCookie(), lengthPrefix(100_000)], /SOCKTUNE_ERR_FRAME_TOO_LARGE/));
  test('parameters out of range', () =>
    expectFailure([generateCookie(), encodeJson({ tcp: true, time: 1, parallel: 0, len: 1024 })], /iperf3 parallel must be 1 to 128/));
  test('a data connection with an unknown cookie, sending data', () =>
    expectFailure([Buffer.alloc(COOKIE_BYTES, 0x61), Buffer.alloc(4, 0xff)], /SOCKTUNE_ERR_FRAME_TOO_LARGE/));
  test('a client that vanishes after its cookie', () => expectFailure([generateCookie()], /SOCKTUNE_ERR_PEER_GONE/, true));
  test('a client that vanishes while the server waits for its streams', () =>
    expectFailure(
      [generateCookie(), encodeJson({ tcp: true, time: 5, parallel: 2, len: 1024 })],
      /SOCKTUNE_ERR_PEER_GONE: the iperf3 client closed its control connection before its streams arrived/,
      true,
    ));

  test('an unknown state byte in the middle of a test', async () => {
    const seen = logs.length;
    const control = net.connect({ port, host: '127.0.0.1' });
    const cookie = generateCookie();
    control.write(cookie);
    control.on('data', (chunk: Buffer) => {
      if (chunk.includes(9)) control.write(encodeJson({ tcp: true, time: 5, parallel: 1, len: 1024 }));
      if (chunk.includes(10)) {
        const stream = net.connect({ port, host: '127.0.0.1' }, () => stream.write(cookie));
        stream.on('error', () => {});
      }
      if (chunk.includes(2)) control.write(Buffer.from([99]));
    });
    control.on('error', () => {});
    await new Promise((resolve) => control.once('close', resolve));
    for (let i = 0; i < 50 && logs.length === seen; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(logs[seen]?.error ?? '', /SOCKTUNE_ERR_PROTOCOL: unexpected iperf3 state 99/);
  });

  test('afterwards: no test left running, descriptors and handles back to where they were', async () => {
    assert.equal(server.activeTests, 0);
    for (let i = 0; i < 20 && openFds() > fdsBefore; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(openFds() <= fdsBefore, `fds ${openFds()} > ${fdsBefore} before`);
    assert.ok(
      process.getActiveResourcesInfo().length <= handlesBefore + 1,
      `active resources ${process.getActiveResourcesInfo().join(',')}`,
    );
  });
});
