import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, waitForListening } from '../../testkit/helpers.ts';
import { CONTROL_SERVER_DEFAULTS } from '../../src/bench/servers/control/control-server.ts';
import { IPERF3_SERVER_DEFAULTS } from '../../src/bench/servers/iperf3/iperf3-server.ts';
import { SERVER_DEFAULTS } from '../../src/transport/server/options.ts';
import { closest } from '../../src/cli/arguments.ts';
import { runCli, runInProcess, startServer } from '../../testkit/cli.ts';

test('a typo in a command or a flag gets "did you mean"', async () => {
  const command = await runInProcess(['strem']);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command "strem"; did you mean stream\?/);
  const flag = await runInProcess(['stream', '--tme', '3']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option --tme; did you mean --time\? \(see socktune stream --help\)/);
  const elsewhere = await runInProcess(['stream', '--depth', '4']);
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
    const result = await runInProcess([...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(
      result.stderr,
      new RegExp(`^socktune: SOCKTUNE_ERR_USAGE: ${flag} takes a size like 64K or 1M, got "-5"\n$`),
      args.join(' '),
    );
  }
  const time = await runInProcess(['stream', '-c', '127.0.0.1', '-t', '-1']);
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
    new RegExp(`--max-tests <n> +tests at once before new clients are refused \\(default ${CONTROL_SERVER_DEFAULTS.maxTests}\\)`),
  );
  const iperf3 = await runCli(['server', 'iperf3', '--help']);
  assert.match(iperf3.stdout, /^socktune server iperf3 — /);
  assert.match(iperf3.stdout, /--rsa-private-key-path/);
  assert.doesNotMatch(iperf3.stdout, /--io-model|--one-off|--auth-token/);
  assert.match(iperf3.stdout, new RegExp(`\\(default ${IPERF3_SERVER_DEFAULTS.maxTests}\\)`));
  assert.match(iperf3.stdout, new RegExp(`port to listen on \\(default ${IPERF3_SERVER_DEFAULTS.port};`));
  const sockperf = await runCli(['server', '--sockperf', '--help']);
  assert.match(sockperf.stdout, /^socktune server sockperf — /);
  assert.match(sockperf.stdout, new RegExp(`--max-threads <n> +the thread-per-conn pool \\(default ${SERVER_DEFAULTS.maxThreads}\\)`));
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

test('a control port that answers something else is recognized, with the flag that drives it; nothing listening says where to start the server', async () => {
  const refused = await runCli(['rr', '-c', '127.0.0.1', '-p', String(await freePort()), '-t', '1']);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /SOCKTUNE_ERR_REFUSED: .*is `socktune server` running on 127\.0\.0\.1:\d+\? Start it there/);

  const web = createHttpServer((_request, response) => response.end('<!DOCTYPE html><p>hello</p>'));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  const webPort = (web.address() as AddressInfo).port;
  try {
    const http = await runCli(['stream', '-c', '127.0.0.1', '-p', String(webPort), '-t', '1']);
    assert.equal(http.code, 3);
    assert.match(
      http.stderr,
      new RegExp(
        `127\\.0\\.0\\.1:${webPort} answers like a web server \\(HTTP\\), not a socktune server: .*--raw -c 127\\.0\\.0\\.1:${webPort}`,
      ),
    );
  } finally {
    web.close();
  }

  const echo = await startServer(['--service', 'echo']);
  try {
    const echoed = await runCli(['rr', '-c', '127.0.0.1', '-p', String(echo.port), '-t', '1']);
    assert.match(
      echoed.stderr,
      /answers like an echo service \(it sent back what socktune sent\), not a socktune server: drive it with --raw/,
    );
  } finally {
    await echo.stop();
  }

  const iperf3Port = await freePort();
  const iperf3 = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(iperf3Port)], { stdio: 'ignore' });
  try {
    await waitForListening(iperf3Port);
    const asIperf3 = await runCli(['rr', '-c', '127.0.0.1', '-p', String(iperf3Port), '-t', '1']);
    assert.match(
      asIperf3.stderr,
      new RegExp(`answers like an iperf3 server, not a socktune server: use socktune stream --iperf3 -c 127\\.0\\.0\\.1 -p ${iperf3Port}`),
    );
  } finally {
    iperf3.kill();
  }

  // The other way round: --iperf3 pointed at a socktune server.
  const socktune = await startServer();
  try {
    const asSocktune = await runCli(['stream', '--iperf3', '-c', '127.0.0.1', '-p', String(socktune.port), '-t', '1']);
    assert.notEqual(asSocktune.code, 0);
    assert.match(asSocktune.stderr, /this is a socktune server, not an iperf3 one \(it answered with a JSON line\): drop --iperf3/);
  } finally {
    await socktune.stop();
  }

  const sockperfPort = await freePort();
  const sockperf = spawn('sockperf', ['sr', '--tcp', '-i', '127.0.0.1', '-p', String(sockperfPort)], { stdio: 'ignore' });
  try {
    await waitForListening(sockperfPort);
    const asSockperf = await runCli(['rr', '-c', '127.0.0.1', '-p', String(sockperfPort), '-t', '1']);
    assert.match(
      asSockperf.stderr,
      /without a byte: is 127\.0\.0\.1:\d+ a socktune server\? A sockperf server closes on socktune's handshake \(use --sockperf\)/,
    );
  } finally {
    sockperf.kill();
  }
});

test('the defaults help shows are the ones a run uses (read back from its --json options)', async () => {
  const server = await startServer();
  const helpDefault = async (command: string, flag: string): Promise<string> => {
    const help = (await runCli([command, '--help'])).stdout;
    const match = new RegExp(`--${flag} <[^>]+> +.*\\(default ([^)]+)\\)`).exec(help);
    assert.ok(match, `${command} --help shows the default of --${flag}`);
    return match[1]!;
  };
  try {
    const cases: [string, string[], [string, string, (text: string) => unknown][]][] = [
      [
        'rr',
        [],
        [
          ['connections', 'connections', Number],
          ['depth', 'depth', Number],
          ['size', 'size', Number],
          ['interval', 'intervalSec', Number],
        ],
      ],
      [
        'stream',
        [],
        [
          ['length', 'writeSize', () => 128 * 1024],
          ['parallel', 'parallel', Number],
        ],
      ],
      [
        'msg',
        [],
        [
          ['size', 'size', Number],
          ['connections', 'connections', Number],
          ['depth', 'depth', Number],
          ['batch', 'batch', String],
        ],
      ],
    ];
    for (const [command, extra, checks] of cases) {
      const run = await runCli([command, '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '--json', ...extra]);
      assert.equal(run.code, 0, run.stderr);
      const { options } = JSON.parse(run.stdout) as { options: Record<string, unknown> };
      for (const [flag, option, parse] of checks) {
        const shown = await helpDefault(command, flag);
        assert.equal(options[option], parse(shown), `${command} --${flag}: help says ${shown}, the run used ${String(options[option])}`);
      }
    }
    assert.equal(await helpDefault('stream', 'length'), '128K');
  } finally {
    await server.stop();
  }
});

test('every flag that takes a value names what it takes (<seconds>, <bytes>, <host>, …), never a bare <value>', async () => {
  for (const command of [
    'tune',
    'server',
    'server iperf3',
    'server sockperf',
    'server service',
    'stream',
    'rr',
    'crr',
    'conns',
    'msg',
    'merge',
    'info',
  ]) {
    const help = await runInProcess([...command.split(' '), '--help']);
    assert.equal(help.code, 0, command);
    assert.doesNotMatch(help.stdout, /<value>/, command);
  }
  const rr = await runInProcess(['rr', '--help']);
  assert.match(rr.stdout, /-t, --time <seconds>/);
  assert.match(rr.stdout, /--size <bytes>/);
  assert.match(rr.stdout, /-c, --client <host>/);
});
