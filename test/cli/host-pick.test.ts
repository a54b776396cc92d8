import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocktuneError } from '../../src/core/errors.ts';
import { MAX_PICK, pickHost } from '../../src/cli/host-pick.ts';
import { runCli, runInProcess, startServer } from '../../testkit/cli.ts';

test('pickHost: entry N mod the list’s length, so clients 0..N-1 land evenly and always the same way', () => {
  assert.equal(pickHost('a', '7'), 'a');
  assert.equal(pickHost('a,b,c', '0'), 'a');
  assert.equal(pickHost('a,b,c', '4'), 'b');
  assert.equal(pickHost('a:5210,[fd00::1]:5210', '1'), '[fd00::1]:5210');
  assert.equal(pickHost('a, b', '1'), 'b', 'spaces around an entry are not part of it');
  for (const [clients, hosts] of [
    [5, 3],
    [3, 5],
    [1000, 7],
  ] as const) {
    const list = Array.from({ length: hosts }, (_, index) => `h${index}`);
    const counts = new Map<string, number>();
    for (let index = 0; index < clients; index++) {
      const host = pickHost(list.join(','), String(index));
      assert.equal(host, list[index % hosts]);
      counts.set(host, (counts.get(host) ?? 0) + 1);
    }
    const shares = list.map((host) => counts.get(host) ?? 0);
    assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `${clients} over ${hosts}: ${shares.join(', ')}`);
  }
});

test('pickHost refuses what cannot be a pick: SOCKTUNE_ERR_USAGE naming the flag', () => {
  const refused = (list: string, pick: string, message: RegExp): void =>
    assert.throws(
      () => pickHost(list, pick),
      (error: unknown) => error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_USAGE' && message.test(error.message),
    );
  refused('a,,b', '0', /-c lists an empty host at position 2 of 3: "a,,b"/);
  refused('a,b,', '0', /position 3 of 3/);
  refused('a,b', '-1', /--pick takes a whole number from 0 to 1000000, got "-1"/);
  refused('a,b', '1.5', /--pick takes a whole number/);
  refused('a,b', String(MAX_PICK + 1), /--pick takes a whole number from 0 to 1000000/);
  refused('a,b', '$(JOB_COMPLETION_INDEX)', /--pick got "\$\(JOB_COMPLETION_INDEX\)", not expanded: the kubelet expands/);
  refused(Array.from({ length: 10_001 }, () => 'h').join(','), '0', /-c lists 10001 hosts; at most 10000/);
});

test('-c HOST,HOST --pick N: the client reaches the picked host, and its result records it', async () => {
  const server = await startServer();
  try {
    // Entry 3 mod 2 = 1: the live server; entry 0 would be a port nothing listens on.
    const run = await runCli(['rr', '-c', `127.0.0.1:1,127.0.0.1:${server.port}`, '--pick', '3', '-t', '0.2', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { options: { target: { host: string; port: number } } };
    assert.deepEqual(result.options.target, { host: '127.0.0.1', port: server.port });
  } finally {
    await server.stop();
  }
  const usage: [string[], RegExp][] = [
    [['rr', '-c', 'a,b'], /-c takes one host, got the list "a,b": add --pick N to reach entry N mod its length/],
    [['crr', '--pick', '1'], /--pick N picks a host from -c HOST,HOST,\.\.\.: give the list with -c/],
    [['stream', '-c', 'a,b', '--pick', 'x'], /--pick takes a whole number from 0 to 1000000, got "x"/],
  ];
  for (const [args, message] of usage) {
    const run = await runInProcess(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  for (const command of ['rr', 'crr', 'stream', 'msg', 'conns']) {
    const help = await runInProcess([command, '--help']);
    assert.match(help.stdout, /--pick <n> +with -c HOST,HOST,\.\.\.: reach entry N mod the list's length/, command);
  }
});
