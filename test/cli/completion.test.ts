import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runCli } from '../../testkit/cli.ts';

const run = promisify(execFile);

/** What bash completes `line` to, with the script `socktune completion bash` prints. */
async function bashCompletes(script: string, line: string[]): Promise<string[]> {
  const words = line.map((word) => `'${word}'`).join(' ');
  const { stdout } = await run('bash', [
    '-c',
    `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _socktune; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  return stdout.split('\n').filter(Boolean);
}

test('completion bash: commands, modes, each mode its own flags, closed positional sets', async () => {
  const { code, stdout: script } = await runCli(['completion', 'bash']);
  assert.equal(code, 0);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'str']), ['stream']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'server', 'i']), ['iperf3']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'server', 'iperf3', '--max-t']), ['--max-tests', '--max-total-streams']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'server', 'sockperf', '--max-t']), ['--max-threads']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'server', 'service', 'msg-']), ['msg-echo', 'msg-sink']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'rr', '--dep']), ['--depth']);
  assert.deepEqual(await bashCompletes(script, ['socktune', 'completion', 'f']), ['fish']);
});

test('completion zsh and fish: scripts from the same definitions; an unknown shell is a usage error', async () => {
  const zsh = await runCli(['completion', 'zsh']);
  assert.match(zsh.stdout, /bashcompinit/);
  assert.match(zsh.stdout, /complete -o default -F _socktune socktune/);
  const fish = await runCli(['completion', 'fish']);
  assert.match(fish.stdout, /complete -c socktune -n __fish_use_subcommand -a stream -d /);
  assert.match(fish.stdout, /complete -c socktune -n '__fish_seen_subcommand_from rr' -l depth -r -d 'requests in flight per connection'/);
  const bad = await runCli(['completion', 'powershell']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /socktune completion takes one shell: bash, zsh, fish/);
});
