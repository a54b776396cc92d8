// A fresh clone after `npm ci` has no dist/ (nothing builds on install): README's set-up,
// `npm ci && npx socktune …`, runs the TypeScript sources on the Node the clone pins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeVersionAdvice } from '../../src/core/node-version.ts';
import {
  NODE24_PATH,
  OLD_NODE,
  OLD_NODE_VERSION,
  ROOT,
  SYSTEM_PATH,
  WITHOUT_OLD_NODE,
  copyOfTree,
  npmEnvironment,
  registryUnreachable,
  run,
  temporaryDirectory,
} from '../../testkit/package.ts';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const pinned = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'node', 'package.json'), 'utf8')) as { version: string };

test('npx socktune in a clone without dist/ runs on the pinned Node, even where the system Node comes first in PATH', async (t) => {
  const clone = copyOfTree(t, { nodeModules: true });
  const env = await npmEnvironment(temporaryDirectory(t, 'npx'), OLD_NODE ? SYSTEM_PATH : NODE24_PATH);
  const shown = await run('npx', ['socktune', '--version'], { cwd: clone, env });
  const unreachable = registryUnreachable(shown);
  if (unreachable) return t.skip(unreachable);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout.trim(), version);
  const info = await run('npx', ['socktune', 'info', '--json'], { cwd: clone, env });
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).environment.node, `v${pinned.version}`);
  assert.equal(existsSync(join(clone, 'dist')), false, 'nothing was built');
});

test(
  'an unbuilt clone on the system Node: bin says what src/core/node-version.ts says to a clone',
  { skip: WITHOUT_OLD_NODE },
  async (t) => {
    const found = OLD_NODE_VERSION!.replace(/^v/, '');
    const args = ['stream', '-c', 'host name', "it's"];
    for (const pinnedNode of [true, false]) {
      const clone = copyOfTree(t, { nodeModules: pinnedNode });
      const result = await run(OLD_NODE!, ['bin/socktune.js', ...args], { cwd: clone, env: { ...process.env, PATH: SYSTEM_PATH } });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `socktune: SOCKTUNE_ERR_NODE_VERSION: socktune needs Node.js >= 22.12.0, found ${found}. ` +
          `${nodeVersionAdvice({ kind: 'clone', pinnedNode, args })}\n`,
      );
    }
  },
);
