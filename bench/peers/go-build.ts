import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Builds one of bench/peers' Go programs (`go-load-client`, `go-echo-server`) into `work`, with its
 * build cache there too, and returns the binary's path; a failed build stops the bench, saying what
 * to install.
 */
export function goBuild(program: string, work: string): string {
  const output = join(work, program);
  const result = spawnSync('go', ['build', '-o', output, new URL(`./${program}.go`, import.meta.url).pathname], {
    env: { ...process.env, GOCACHE: join(work, 'gocache'), GOPATH: join(work, 'gopath'), GO111MODULE: 'off' },
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`go build ${program}.go failed (apt-get install golang-go)`);
  return output;
}
