import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSupportedNodeVersion } from '../src/core/node-version.ts';
import { runProcess, type ProcessRun } from './helpers.ts';

/** The working tree these tests check. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A system Node older than socktune supports (Debian's 20), where the version gate speaks. */
export const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => existsSync(path));

/** The system Node's version (`v20.…`), if there is one. */
export const OLD_NODE_VERSION = OLD_NODE ? execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).trim() : undefined;

/** Why a test of the version gate on the system Node cannot run here, or false when it can. */
export const WITHOUT_OLD_NODE: string | false = !OLD_NODE_VERSION
  ? 'no system Node installed'
  : isSupportedNodeVersion(OLD_NODE_VERSION)
    ? `system Node ${OLD_NODE_VERSION} is new enough`
    : false;

/** PATH with this Node (the pinned 24) first, so npm, npx and `#!/usr/bin/env node` run on it. */
export const NODE24_PATH = [dirname(process.execPath), process.env.PATH].join(delimiter);

/** PATH of a machine whose only Node is the system one: no node_modules/.bin that `npm test` put first. */
export const SYSTEM_PATH = [
  ...(OLD_NODE ? [dirname(OLD_NODE)] : []),
  ...(process.env.PATH ?? '').split(delimiter).filter((entry) => entry !== '' && !entry.includes('node_modules')),
].join(delimiter);

export type Run = ProcessRun;

/** Runs a program to completion (killed if it outlives `timeoutMs`); never rejects on a non-zero exit. */
export function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return runProcess(command, args, { cwd: options.cwd, env: options.env, timeoutMs: options.timeoutMs ?? 60_000 });
}

/** Whoever removes a temporary directory when done: a test's context, or the file's `after` hook. */
export interface Owner {
  after: (cleanup: () => void) => unknown;
}

/** A temporary directory, removed when its owner is done. */
export function temporaryDirectory(owner: Owner, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `socktune-${name}-`));
  owner.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What `npm ci`, a build and the tests make: left out of a copy of the tree. */
const NOT_SOURCES = new Set(['node_modules', 'dist', 'dist-exe', '.git', 'test-artifacts', 'tmp']);

/**
 * A copy of the working tree as a fresh clone has it (no dist/), uncommitted changes included: a
 * `git clone` would have only HEAD. With `nodeModules`, node_modules is this tree's, linked, as if
 * `npm ci` had run. Packing happens in the copy because prepack rebuilds dist/ from scratch, which
 * must not pull dist/ from under tests running at the same time in this tree. With `built`, the
 * copy keeps this tree's dist/.
 */
export function copyOfTree(owner: Owner, { nodeModules, built = false }: { nodeModules: boolean; built?: boolean }): string {
  const copy = join(temporaryDirectory(owner, 'clone'), 'socktune');
  const left = (top: string): boolean => NOT_SOURCES.has(top) && !(built && top === 'dist');
  cpSync(ROOT, copy, { recursive: true, filter: (source) => !left(source.slice(ROOT.length).split('/')[0]!) });
  if (nodeModules) symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  return copy;
}

/** npm's settings a child npm may inherit: where packages come from and are cached. The rest is the parent run's (prefix, lifecycle). */
const KEPT_NPM_SETTING = /^npm_config_(cache|userconfig|globalconfig|registry|cafile|https?_proxy|proxy|noproxy)$/;

/**
 * The environment for npm and the programs it installs: the parent `npm test`'s own settings
 * removed, `PATH` as given, and a cache directory of its own that shares the package store of the
 * real cache (so installs work offline), while npx installs and logs stay in `dir` and go with it.
 */
export async function npmEnvironment(dir: string, path: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { PATH: path };
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'PATH' || (key.startsWith('npm_') && !KEPT_NPM_SETTING.test(key))) continue;
    env[key] = value;
  }
  const realCache = (await run('npm', ['config', 'get', 'cache'], { cwd: dir, env })).stdout.trim();
  const cache = join(dir, 'npm-cache');
  mkdirSync(cache, { recursive: true });
  if (!existsSync(join(cache, '_cacache'))) symlinkSync(join(realCache, '_cacache'), join(cache, '_cacache'), 'dir');
  return { ...env, npm_config_cache: cache };
}

/** Flags for installs from the local cache where it has the package, quiet about audits and funding. */
export const OFFLINE_FIRST = ['--prefer-offline', '--no-audit', '--no-fund'];

const NETWORK_FAILURE = /npm error (?:code|errno) (ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/;

/** The network error an npm command failed with (the registry cannot be reached), if that was why. */
export function registryUnreachable(result: Run): string | undefined {
  if (result.code === 0) return undefined;
  const match = NETWORK_FAILURE.exec(result.stderr);
  return match ? `the registry cannot be reached (npm failed with ${match[1]})` : undefined;
}

/**
 * Packs the tree in `dir` into `destination` and returns the tarball. A copy made `built` holds the
 * dist/ that `npm test` has just built, so the pack skips prepack's second build of the same sources
 * (pack.test.ts runs prepack itself).
 */
export async function packTarball(dir: string, destination: string, env: NodeJS.ProcessEnv, { built = false } = {}): Promise<string> {
  const scripts = built ? ['--ignore-scripts'] : [];
  const packed = await run('npm', ['pack', '--json', ...scripts, '--pack-destination', destination], { cwd: dir, env, timeoutMs: 120_000 });
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}\n${packed.stdout}`);
  // With --json npm writes the scripts' output (the build) to stderr: stdout is the JSON alone.
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  return join(destination, filename);
}
