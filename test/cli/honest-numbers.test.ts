import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, runCli, startServer } from '../../testkit/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'socktune-honest-'));

test('values that could not give a measurement are refused before any connection (exit 2)', async () => {
  let connections = 0;
  const listener = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  try {
    const cases: [string[], RegExp][] = [
      [['stream', '-t', '0'], /--time takes more than 0 to 3600 seconds, got "0"/],
      [['rr', '--time=-1'], /--time takes a duration like 10/],
      [['rr', '--size', '10G', '-t', '1'], /--size takes at most 64M, got "10G"/],
      [['msg', '--size', '20M'], /--size takes at most 16M/],
      [['stream', '-l', '1G'], /--length takes at most 64M/],
      [['rr', '--interval', '0'], /--interval takes more than 0/],
      [['rr', '-w', '4G'], /--sndbuf\/-w takes at most 2147483647 bytes/],
    ];
    for (const [args, pattern] of cases) {
      const result = await runCli([...args, '-c', '127.0.0.1', '-p', String(port)]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
    }
    assert.equal(connections, 0, 'nothing was connected to');
  } finally {
    listener.close();
  }
});

test('nothing measured: null percentiles in JSON, n/a in text, a warning that says why, exit 5', async () => {
  // A port that reads and never answers: no request can complete.
  const server = await startServer(['--service', 'discard']);
  try {
    const json = await runCli(['rr', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '0.5', '--json']);
    assert.equal(json.code, 5, json.stderr);
    const document = JSON.parse(json.stdout) as {
      summary: { requests: number; latency: Record<string, number | null> };
      warnings: string[];
    };
    assertSchema(document);
    assert.equal(document.summary.requests, 0);
    const { count, ...statistics } = document.summary.latency;
    assert.equal(count, 0);
    assert.ok(
      Object.values(statistics).every((value) => value === null),
      JSON.stringify(statistics),
    );
    assert.ok(document.warnings.some((warning) => /nothing was measured: no request was answered/.test(warning)));

    const human = await runCli(['rr', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '0.5']);
    assert.equal(human.code, 5);
    assert.match(human.stdout, /│ latency │ n\/a │ n\/a │/);
    assert.doesNotMatch(human.stdout, /0\.0 µs/);
    assert.match(human.stderr, /warning: nothing was measured/);
  } finally {
    await server.stop();
  }
});

test('exit codes: a name that does not resolve is a network error (3), not an unexpected one', async () => {
  // Two dots make the resolver refuse the name on this machine: no query leaves it.
  const result = await runCli(['rr', '-c', 'bad..name', '-t', '1']);
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /SOCKTUNE_ERR_RESOLVE: cannot resolve "bad\.\.name": ENOTFOUND/);
});

test('merge checks every input against the published schema and names the file and the field (exit 2)', async () => {
  const server = await startServer([]);
  try {
    const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-i', '0.1', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const good = join(work, 'good.json');
    writeFileSync(good, run.stdout);
    const document = JSON.parse(run.stdout) as { intervals: Record<string, unknown>[]; summary: Record<string, unknown> };
    delete document.intervals[0]!.histogram;
    const noHistogram = join(work, 'no-histogram.json');
    writeFileSync(noHistogram, JSON.stringify(document));
    const broken = await runCli(['merge', good, noHistogram]);
    assert.equal(broken.code, 2);
    assert.match(
      broken.stderr,
      /SOCKTUNE_ERR_MERGE: .*no-histogram\.json: intervals\.0 lacks "histogram" \(schema socktune\/1, command rr\)/,
    );
    document.intervals = [];
    (document.summary as { requests: unknown }).requests = 'many';
    const wrongType = join(work, 'wrong-type.json');
    writeFileSync(wrongType, JSON.stringify(document));
    const typed = await runCli(['merge', good, wrongType]);
    assert.equal(typed.code, 2);
    assert.match(typed.stderr, /wrong-type\.json: summary\.requests must be/);
    const stranger = join(work, 'stranger.json');
    writeFileSync(stranger, JSON.stringify({ hello: 'world' }));
    const foreign = await runCli(['merge', good, stranger]);
    assert.match(foreign.stderr, /stranger\.json: not a socktune\/1 document/);
  } finally {
    await server.stop();
  }
});
