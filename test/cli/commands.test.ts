import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeFd } from '../../src/core/socket-syscalls.ts';
import { bindListeningSocket } from '../../src/transport/server/listen-socket.ts';
import { assertSchema, runCli, runInProcess, startServer, type RunningServer } from '../../testkit/cli.ts';

test('help: top level lists the commands; each command has examples', async () => {
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  for (const name of ['tune', 'server', 'stream', 'rr', 'crr', 'conns', 'msg', 'info'])
    assert.match(top.stdout, new RegExp(`\\n  ${name} `));
  const stream = await runCli(['stream', '--help']);
  assert.equal(stream.code, 0);
  assert.match(stream.stdout, /Examples:\n {2}socktune stream -c 127\.0\.0\.1/);
  assert.match(stream.stdout, /-R, --reverse/);
});

test('usage errors: one clear line on stderr, exit 2, no stack', async () => {
  const unknown = await runCli(['stream', '--bogus']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^socktune: SOCKTUNE_ERR_USAGE: unknown option --bogus \(see socktune stream --help\)/);
  assert.doesNotMatch(unknown.stderr, /\n\s+at /);
  const noHost = await runInProcess(['rr']);
  assert.equal(noHost.code, 2);
  assert.match(noHost.stderr, /SOCKTUNE_ERR_USAGE: say which server to test/);
  const badSize = await runInProcess(['stream', '-c', '127.0.0.1', '-l', 'huge']);
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /--length takes a size like 64K/);
  const command = await runInProcess(['frobnicate']);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command "frobnicate"/);
});

test('info --json validates against the schema', async () => {
  const info = await runCli(['info', '--json']);
  assert.equal(info.code, 0);
  const document = JSON.parse(info.stdout);
  assertSchema(document);
  assert.equal(document.environment.node, process.version);
});

test('a client whose server is not there: SOCKTUNE_ERR_REFUSED, exit 3', async () => {
  // A port bound but not listening: the kernel refuses connections to it, and no other test can take it meanwhile.
  const bound = bindListeningSocket({ host: '127.0.0.1', address: '127.0.0.1', port: 0 }, {});
  try {
    const result = await runCli(['stream', '-c', '127.0.0.1', '-p', String(bound.port), '-t', '1']);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /SOCKTUNE_ERR_REFUSED/);
  } finally {
    closeFd(bound.fd);
  }
});

describe('against a running socktune server', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'server exits 0 on SIGTERM');
  });

  const client = (args: string[]) => runCli([...args, '-c', '127.0.0.1', '-p', String(server.port)]);

  test('stream --json: schema, and the server received every byte the client sent', async () => {
    const result = await client(['stream', '-t', '0.3', '-i', '0.1', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    assert.equal(document.summary.direction, 'forward');
    assert.ok(document.summary.sender.bytes > 0);
    assert.equal(document.summary.receiver.bytes, document.summary.sender.bytes);
    assert.ok(document.intervals.length >= 3);
    // Each interval has the kernel's view of the connection, in iperf3's names; the streams add up to the interval.
    for (const interval of document.intervals) {
      assert.equal(interval.streams.length, 1);
      const [stream] = interval.streams;
      assert.equal(stream.socket, 1);
      assert.equal(stream.sentBytes, interval.sentBytes);
      assert.ok(Number.isInteger(stream.retransmits) && stream.snd_cwnd > 0 && stream.rtt > 0, JSON.stringify(stream));
      assert.equal(interval.retransmits, stream.retransmits);
    }
    assert.equal(document.effective.server.noDelay, true);
  });

  test('stream -R -P 3 --verify: every byte checked, none corrupted or lost', async () => {
    const result = await client(['stream', '-t', '0.3', '-R', '-P', '3', '--verify', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { summary } = JSON.parse(result.stdout);
    assert.equal(summary.receiver.bytes, summary.sender.bytes);
    assert.deepEqual(summary.verify, { bytesChecked: summary.receiver.bytes, bytesCorrupted: 0, bytesLost: 0 });
  });

  test('stream --bidir -w 64K across io models reports the effective buffers of both ends', async () => {
    for (const model of ['workers', 'thread-per-conn']) {
      const result = await client(['stream', '-t', '0.3', '--bidir', '-w', '64K', '--io-model', model, '--workers', '2', '--json']);
      assert.equal(result.code, 0, result.stderr);
      const document = JSON.parse(result.stdout);
      assertSchema(document);
      assert.equal(document.effective.client.receiveBufferSize, 131072);
      assert.equal(document.effective.server.sendBufferSize, 131072);
      assert.equal(document.summary.receiver.bytes, document.summary.sender.bytes);
      assert.equal(document.summary.reverseBytes.sent, document.summary.reverseBytes.received);
    }
  });

  test('stream human output: interval lines, a table, effective buffers, CPU line', async () => {
    const result = await client(['stream', '-t', '0.3', '-i', '0.15']);
    assert.equal(result.code, 0, result.stderr);
    // iperf3's interval line: the stream, the time, bytes, rate, and the kernel's retransmits, window and RTT.
    assert.match(result.stderr, /^\[ {2}1\] 0\.00-0\.1\d s\s+\S+ \S+\s+\S+ [KMGT]?bit\/s {2}retr \d+ {2}cwnd \S+ \S+ {2}rtt \d+ µs$/m);
    const parallel = await client(['stream', '-t', '0.3', '-i', '0.15', '-P', '2']);
    assert.equal(parallel.code, 0, parallel.stderr);
    for (const label of [' {2}1', ' {2}2', 'SUM']) assert.match(parallel.stderr, new RegExp(`^\\[${label}\\] 0\\.00-0\\.1\\d s`, 'm'));
    assert.match(result.stdout, /│ sender\s+│ client │/);
    assert.match(result.stdout, /effective {2}client: sndbuf/);
    assert.match(result.stdout, /cpu {8}client \d+(\.\d)?% of one core/);
  });

  test('rr --json closed loop: schema, percentiles in order, a decodable histogram', async () => {
    const result = await client(['rr', '-t', '0.3', '-C', '4', '--depth', '2', '--size', '256', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    const { latency } = document.summary;
    assert.ok(document.summary.requests > 0);
    assert.equal(latency.count, document.summary.requests);
    assert.ok(latency.minUs <= latency.p50Us && latency.p50Us <= latency.p99Us && latency.p99Us <= latency.maxUs);
  });

  test('rr --rate: open loop keeps to its schedule', async () => {
    const result = await client(['rr', '-t', '0.3', '--rate', '2000', '-C', '2', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { summary } = JSON.parse(result.stdout);
    assert.equal(summary.mode, 'open-loop');
    // The schedule is fixed: never more than 600 requests in 0.3 s, however fast the server answers.
    // (How many the server answered depends on the machine; that it never exceeds the schedule does not.)
    assert.ok(summary.requests > 0 && summary.requests <= 700, `requests ${summary.requests}`);
  });

  test('rr --ndjson: one JSON line per interval, then the result', async () => {
    const result = await client(['rr', '-t', '0.3', '-i', '0.1', '--ndjson']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.ok(lines.length >= 4);
    assert.ok(lines.slice(0, -1).every((line) => line.type === 'interval'));
    assert.equal(lines.at(-1).type, 'result');
  });

  test('stream --verify forward: the server checks every byte', async () => {
    const result = await client(['stream', '-t', '0.3', '-P', '2', '--verify', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { summary } = JSON.parse(result.stdout);
    assert.deepEqual(summary.verify, { bytesChecked: summary.sender.bytes, bytesCorrupted: 0, bytesLost: 0 });
  });

  test('crr --json: transactions, connect latency, no failures', async () => {
    const result = await client(['crr', '-t', '0.3', '-C', '2', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    assert.ok(document.summary.transactions > 0);
    assert.equal(document.summary.latency.count, document.summary.transactions);
    assert.ok(document.summary.connectLatency.p50Us <= document.summary.latency.p50Us);
    assert.deepEqual(document.summary.failures, {});
  });

  test('conns --json: every connection opened and held, memory per connection from both ends', async () => {
    const result = await client(['conns', '--target', '500', '--hold', '0.5', '--source-ips', '127.0.0.2-127.0.0.3', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    const { summary } = document;
    assert.equal(summary.opened, 500);
    assert.equal(summary.stillOpen, 500);
    assert.equal(summary.server.connections, 500);
    assert.ok(summary.server.heapBytesPerConnection > 0, 'each held connection costs the loop-model server some heap');
    assert.ok(summary.openFilesLimit.soft >= 564);
  });

  test('--repeat 3: the median run in full, and every run in "repeat"', async () => {
    const result = await client(['rr', '-t', '0.3', '--repeat', '3', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    assert.equal(document.repeat.values.length, 3);
    assert.equal(document.repeat.median, [...document.repeat.values].sort((a: number, b: number) => a - b)[1]);
    assert.equal(document.summary.requestsPerSecond, document.repeat.median);
    // Three runs: min–max is the interval, holding the median with 75% (not 95%: that takes 6 runs).
    const sorted = [...document.repeat.values].sort((a: number, b: number) => a - b);
    assert.deepEqual(document.repeat.interval, { low: sorted[0], high: sorted[2], confidence: 0.75 });
    const human = await client(['rr', '-t', '0.2', '--repeat', '3']);
    assert.match(human.stdout, /repeat +3 runs: requests\/s median .*, 75% CI .* – .* \(min .*, max .*\); 6 runs or more reach 95%/);
  });

  test('msg one-way --json: the server received every message the client sent, coalesced', async () => {
    const result = await client(['msg', '-t', '0.3', '-C', '2', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertSchema(document);
    const { summary } = document;
    assert.ok(summary.messagesSent > 0);
    assert.equal(summary.messagesReceivedByServer, summary.messagesSent);
    assert.equal(summary.unsent, 0);
    assert.ok(summary.averageBatch > 1, `messages per write ${summary.averageBatch}`);
  });

  test('msg --echo under each model, and --batch 1 writes one message at a time', async () => {
    for (const model of ['loop', 'workers', 'thread-per-conn']) {
      const result = await client(['msg', '--echo', '-t', '0.3', '--depth', '8', '--io-model', model, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const document = JSON.parse(result.stdout);
      assertSchema(document);
      assert.ok(document.summary.latency.count > 0);
      assert.equal(document.summary.messagesReceivedByServer, document.summary.messagesSent);
    }
    const single = await client(['msg', '-t', '0.3', '--batch', '1', '--json']);
    assert.equal(JSON.parse(single.stdout).summary.averageBatch, 1);
  });

  test('two clients at the same time are both served', async () => {
    const [a, b] = await Promise.all([client(['stream', '-t', '0.3', '--json']), client(['rr', '-t', '0.3', '--json'])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
  });
});

test('first contact: help <command>, the commands list aligned, errors name the value as help does, conns refuses -t with the reason', async () => {
  const viaHelp = await runInProcess(['help', 'stream']);
  const viaFlag = await runInProcess(['stream', '--help']);
  assert.equal(viaHelp.code, 0);
  assert.equal(viaHelp.stdout, viaFlag.stdout);
  const top = await runInProcess(['--help']);
  assert.match(top.stdout, /^ {2}completion {2}print a shell completion script/m);
  const missing = await runInProcess(['rr', '-c']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /'-c, --client <host>' argument missing/);
  const time = await runInProcess(['conns', '-c', '127.0.0.1', '-t', '3']);
  assert.equal(time.code, 2);
  assert.match(time.stderr, /-t does nothing for socktune conns: conns opens connections, then holds them for --hold SECONDS/);
});

test('iperf3 habits: -J, -O, -4 and --logfile work as in iperf3; -C, and -b or -f outside stream, get a hint, not "unknown option"', async (t) => {
  const server = await startServer();
  const dir = mkdtempSync(join(tmpdir(), 'socktune-habits-'));
  t.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const log = join(dir, 'run.json');
  const run = await runCli([
    'stream',
    '-c',
    'localhost',
    '-p',
    String(server.port),
    '-4',
    '-t',
    '0.4',
    '-i',
    '0.4',
    '-O',
    '0.1',
    '-J',
    '--logfile',
    log,
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '', 'with --logfile, nothing goes to the terminal');
  const document = JSON.parse(readFileSync(log, 'utf8')) as { options: { omitSec: number; target: { host: string } } };
  assertSchema(document);
  assert.equal(document.options.omitSec, 0.1);
  assert.equal(document.options.target.host, '127.0.0.1', '-4 reached localhost over IPv4');
  // The human table says its byte counts hold the warm-up, which its rate leaves out.
  const human = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-O', '0.2']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /│ bytes \(with 0\.2s warm-up\) │ rate \([\d.]+s measured\)/);
  for (const [command, flag, hint] of [
    ['stream', '-C', /congestion control/],
    ['rr', '-b', /stream -b paces each connection/],
    ['rr', '-f', /stream -f chooses the unit/],
  ] as const) {
    const refused = await runCli([command, '-c', '127.0.0.1', '-p', String(server.port), flag, '1']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`socktune ${command} takes no ${flag}: .*${hint.source}`));
  }
  const wrongFamily = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-6']);
  assert.equal(wrongFamily.code, 2);
  assert.match(wrongFamily.stderr, /-6: 127\.0\.0\.1 is an IPv4 address/);
});

test('conns: connections the server closes while they are held are counted and said, with the server’s reason', async (t) => {
  const server = await startServer(['--max-connections', '12']);
  t.after(() => server.stop());
  const run = await runCli(['conns', '-c', '127.0.0.1', '-p', String(server.port), '--target', '20', '--hold', '0.3', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const document = JSON.parse(run.stdout);
  assertSchema(document);
  assert.equal(document.summary.opened, 20);
  assert.equal(document.summary.stillOpen, 12);
  const warning = document.warningDetails.find((entry: { kind: string }) => entry.kind === 'closed-while-held');
  assert.deepEqual(
    { closed: warning.closed, opened: warning.opened, refused: warning.serverErrors.SOCKTUNE_ERR_MAX_CONNECTIONS },
    { closed: 8, opened: 20, refused: 8 },
  );
  assert.match(
    warning.message,
    /^8 of 20 connections were closed by the other end while held \(the server counted SOCKTUNE_ERR_MAX_CONNECTIONS ×8\)/,
  );
});
