import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BENCH_SERVER_DEFAULTS } from '../../src/bench/server/bench-server.ts';
import { IPERF3_SERVER_DEFAULTS } from '../../src/protocols/iperf3/server.ts';
import { SERVER_DEFAULTS } from '../../src/transport/server-options.ts';
import { closest } from '../../src/cli/arguments.ts';
import { runCli, startServer } from './cli-helpers.ts';

test('a typo in a command or a flag gets "did you mean"', async () => {
  const command = await runCli(['strem']);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command "strem"; did you mean stream\?/);
  const flag = await runCli(['stream', '--tme', '3']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option --tme; did you mean --time\? \(see socktune stream --help\)/);
  const elsewhere = await runCli(['stream', '--depth', '4']);
  assert.match(elsewhere.stderr, /--depth is not a flag of socktune stream; it belongs to socktune rr, socktune msg/);
  assert.equal(closest('xyzzy', ['time', 'size']), undefined);
  assert.equal(closest('blockin', ['blocking', 'bind']), 'blocking');
  assert.equal(closest('timee', ['time', 'omit']), 'time');
});

test("negative and malformed numbers get socktune's own message, not Node's parser text", async () => {
  for (const [args, flag] of [
    [['rr', '-c', '127.0.0.1', '--size', '-5'], '--size'],
    [['stream', '-c', '127.0.0.1', '-l', '-5'], '--length'],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(
      result.stderr,
      new RegExp(`^socktune: SOCKTUNE_ERR_USAGE: ${flag} takes a size like 64K or 1M, got "-5"\n$`),
      args.join(' '),
    );
  }
  const time = await runCli(['stream', '-c', '127.0.0.1', '-t', '-1']);
  assert.match(time.stderr, /--time takes .*got "-1"/);
  assert.doesNotMatch(time.stderr, /ambiguous/);
});

test('server modes: named as subcommands or by the older flags; each help lists only its own flags, defaults from the code', async () => {
  const control = await runCli(['server', '--help']);
  assert.equal(control.code, 0);
  assert.match(control.stdout, /Modes:\n {2}server iperf3 +answer stock iperf3/);
  assert.doesNotMatch(control.stdout, /--io-model|--rsa-private-key-path/);
  assert.match(
    control.stdout,
    new RegExp(`--max-tests <value> +tests at once before new clients are refused \\(default ${BENCH_SERVER_DEFAULTS.maxTests}\\)`),
  );
  const iperf3 = await runCli(['server', 'iperf3', '--help']);
  assert.match(iperf3.stdout, /^socktune server iperf3 — /);
  assert.match(iperf3.stdout, /--rsa-private-key-path/);
  assert.doesNotMatch(iperf3.stdout, /--io-model|--one-off|--auth-token/);
  assert.match(iperf3.stdout, new RegExp(`\\(default ${IPERF3_SERVER_DEFAULTS.maxTests}\\)`));
  assert.match(iperf3.stdout, new RegExp(`port to listen on \\(default ${IPERF3_SERVER_DEFAULTS.port};`));
  const sockperf = await runCli(['server', '--sockperf', '--help']);
  assert.match(sockperf.stdout, /^socktune server sockperf — /);
  assert.match(sockperf.stdout, new RegExp(`--max-threads <value> +the thread-per-conn pool \\(default ${SERVER_DEFAULTS.maxThreads}\\)`));
  assert.doesNotMatch(sockperf.stdout, /--max-tests|--window/);
});

test('server service NAME and server --service NAME start the same server', async () => {
  const asSubcommand = (args: string[]) =>
    spawn(process.execPath, [args[0]!, 'server', 'service', 'echo', ...args.slice(2)], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const [extra, launch] of [
    [['--service', 'echo'], undefined],
    [['--service=echo'], undefined],
    [[], asSubcommand],
  ] as const) {
    const server = await startServer([...extra, '--json'], launch);
    assert.match(server.stdout(), /"event":"listening"/);
    const echoed = await runCli(['rr', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '0.3', '--json']);
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.equal(await server.stop(), 0);
  }
  const missing = await runCli(['server', '--service']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--service needs a NAME \(see socktune server service --help\)/);
  const subcommand = await runCli(['server', 'service', 'chargen']);
  assert.match(subcommand.stderr, /socktune server service takes one service name, one of echo, discard/);
});
