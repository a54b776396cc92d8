import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { assertSchema, runCli, startServer } from '../../testkit/cli.ts';

/** A sink on loopback that keeps the client port of every connection it accepts. */
async function startSink(t: { after: (fn: () => Promise<void>) => void }): Promise<{ port: number; clientPorts: number[] }> {
  const clientPorts: number[] = [];
  const sink = net.createServer((socket) => {
    clientPorts.push(socket.remotePort!);
    socket.on('error', () => {}).resume();
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => sink.close(() => resolve())));
  return { port: (sink.address() as net.AddressInfo).port, clientPorts };
}

test('stream --cport N -P 2: the data connections leave from ports N and N+1, as iperf3 --cport', async (t) => {
  const sink = await startSink(t);
  // Below the ephemeral range (32768+), where no outgoing connection takes a port; a port pair another
  // test holds meanwhile is refused (EADDRINUSE) and another pair tried.
  let cport = 0;
  let run = { code: 1 as number | null, stdout: '', stderr: '' };
  for (let attempt = 0; attempt < 5; attempt++) {
    cport = 20_000 + Math.floor(Math.random() * 10_000);
    run = await runCli(['stream', '--raw', '-c', `127.0.0.1:${sink.port}`, '-t', '0.2', '-P', '2', '--cport', String(cport), '--json']);
    if (run.code === 0 || !/EADDRINUSE/.test(run.stderr)) break;
    sink.clientPorts.length = 0;
  }
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(
    [...sink.clientPorts].sort((a, b) => a - b),
    [cport, cport + 1],
  );
  const document = JSON.parse(run.stdout) as { options: { client: { localPort: number } } };
  assertSchema(document);
  assert.equal(document.options.client.localPort, cport);
  const tooHigh = await runCli(['stream', '-c', '127.0.0.1', '-P', '2', '--cport', '65535']);
  assert.equal(tooHigh.code, 2);
  assert.match(tooHigh.stderr, /--cport takes a whole number from 1 to 65534/);
});

test('stream -b paces every connection below its rate; -f prints rates in the unit asked, as iperf3 -b and -f', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const bitrate = 20e6;
  const run = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.5', '-P', '2', '-b', '20M', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const document = JSON.parse(run.stdout) as { options: { bitrate: number }; summary: { bitsPerSecond: number } };
  assertSchema(document);
  assert.equal(document.options.bitrate, bitrate);
  // A token bucket lets one burst (64 KiB a connection) through ahead of the rate, never more: a
  // slow machine only makes the rate lower.
  const ceiling = (2 * (bitrate * 0.5 + 8 * 64 * 1024 + 8 * 128 * 1024)) / 0.5;
  assert.ok(document.summary.bitsPerSecond > 0 && document.summary.bitsPerSecond <= ceiling, `${document.summary.bitsPerSecond} bit/s`);

  const megabits = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-i', '0.3', '-b', '8M', '-f', 'm']);
  assert.equal(megabits.code, 0, megabits.stderr);
  // The interval ends when the ticker fires: on a busy machine a few milliseconds after 0.30 s.
  assert.match(megabits.stderr, /^\[ {2}1\] 0\.00-0\.3\d s .* \d+(\.\d+)? Mbit\/s/m);
  assert.match(megabits.stdout, /│ \d+(\.\d+)? Mbit\/s/);
  const kibibytes = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-i', '0.3', '-b', '8M', '-f', 'K']);
  assert.equal(kibibytes.code, 0, kibibytes.stderr);
  assert.match(kibibytes.stderr, /\d+(\.\d+)? KiB\/s/);
  assert.doesNotMatch(kibibytes.stdout + kibibytes.stderr, /bit\/s/);

  const reverse = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-R', '-b', '8M']);
  assert.equal(reverse.code, 2);
  assert.match(reverse.stderr, /with -R the socktune server sends: start it with --max-rate/);
  const badUnit = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-f', 'x']);
  assert.equal(badUnit.code, 2);
  assert.match(badUnit.stderr, /--format takes one of k m g t K M G T/);
});
