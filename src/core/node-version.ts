import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocktuneError } from './errors.ts';

export const MINIMUM_NODE_VERSION = '22.12.0';

/** The Node an old system is told to borrow through npx: the major this project develops and tests on. */
const RECOMMENDED_NODE_MAJOR = 24;

/** The package's root: this file is src/core/node-version.ts in a clone, dist/core/node-version.js when built. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function parseVersion(version: string): [number, number, number] {
  const [major = 0, minor = 0, patch = 0] = version
    .replace(/^v/, '')
    .split('.')
    .map((part) => Number.parseInt(part, 10));
  return [major, minor, patch];
}

export function isSupportedNodeVersion(version: string): boolean {
  const found = parseVersion(version);
  const needed = parseVersion(MINIMUM_NODE_VERSION);
  for (let i = 0; i < 3; i++) {
    if (found[i]! !== needed[i]!) return found[i]! > needed[i]!;
  }
  return true;
}

/**
 * Where socktune runs, which decides what someone on an old Node can do about it. `args` are the
 * CLI's arguments (absent when socktune is imported), repeated in the advice so it can be pasted.
 * - clone: a checkout of the repository, whose devDependencies pin a Node (`pinnedNode`: `npm ci` has installed it).
 * - cli: the CLI of an installed package (npx, global, or an app's node_modules/.bin), at `packageRoot`.
 * - library: imported by an application, whose Node is the one to upgrade.
 */
export type RunContext =
  | { kind: 'clone'; pinnedNode: boolean; args?: readonly string[] }
  | { kind: 'cli'; args: readonly string[]; packageRoot: string }
  | { kind: 'library' };

/**
 * A clone is a package root outside any node_modules that has its sources (src/ is not published);
 * anything else was installed. `cliArgs` are given by the CLI and absent for an import.
 */
export function detectRunContext(cliArgs?: readonly string[], packageRoot: string = PACKAGE_ROOT): RunContext {
  const installed = packageRoot.split(sep).includes('node_modules');
  if (!installed && existsSync(join(packageRoot, 'src'))) {
    const pinnedNode = existsSync(join(packageRoot, 'node_modules', 'node', 'package.json'));
    return cliArgs ? { kind: 'clone', pinnedNode, args: cliArgs } : { kind: 'clone', pinnedNode };
  }
  return cliArgs ? { kind: 'cli', args: cliArgs, packageRoot: packageRoot.replace(/[\\/]+$/, '') } : { kind: 'library' };
}

/** Quotes an argument for a POSIX shell only where it needs it, so a pasted command means the same. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function socktuneCommand(prefix: string, args: readonly string[] | undefined): string {
  const rest = args === undefined ? ' <command>' : args.map((arg) => ` ${shellWord(arg)}`).join('');
  return `${prefix}socktune${rest}`;
}

/** What to do about an old Node in this context: one sentence with a command to paste. */
export function nodeVersionAdvice(context: RunContext): string {
  const minimum = MINIMUM_NODE_VERSION.replace(/\.0$/, '');
  switch (context.kind) {
    case 'clone': {
      const run = `\`${socktuneCommand('npx ', context.args)}\` or \`npm test\``;
      return context.pinnedNode
        ? `This clone pins Node ${RECOMMENDED_NODE_MAJOR} as a devDependency: run ${run}, which use it.`
        : `Run \`npm ci\` first (it installs the Node ${RECOMMENDED_NODE_MAJOR} this clone pins), then ${run}.`;
    }
    case 'cli':
      // The package that is already here, not a registry name: it works wherever this copy came from (a tarball, a clone, a mirror).
      return (
        `Run it with Node ${RECOMMENDED_NODE_MAJOR} through npx: ` +
        `\`${socktuneCommand(`npx -y -p node@${RECOMMENDED_NODE_MAJOR} -p ${shellWord(context.packageRoot)} `, context.args)}\`, ` +
        `or upgrade Node to ${minimum} or newer.`
      );
    case 'library':
      return `Upgrade the Node.js that runs this application to ${minimum} or newer.`;
  }
}

/**
 * Throws SOCKTUNE_ERR_NODE_VERSION naming both versions (reusePort and FFI listen need 22.12+) and
 * what to do where socktune runs: the CLI passes its context, an import detects its own.
 */
export function assertSupportedNodeVersion(version: string = process.versions.node, context?: RunContext): void {
  if (isSupportedNodeVersion(version)) return;
  throw new SocktuneError(
    'SOCKTUNE_ERR_NODE_VERSION',
    `socktune needs Node.js >= ${MINIMUM_NODE_VERSION}, found ${version}. ${nodeVersionAdvice(context ?? detectRunContext())}`,
  );
}
