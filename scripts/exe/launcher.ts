/**
 * The executable's main script (SEA runs one CommonJS script): unpacks the tree (tree.ts), then runs
 * the CLI from it as an installed package runs dist/cli/main.js. The version gate of bin/socktune.js
 * is left out: the Node inside is the one the build pinned.
 */
import { existsSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { treeRoot } from './tree.ts';

/**
 * A script of the tree itself, which socktune runs in a child process as `process.execPath script`
 * (tune's local server, src/bench/servers/control/local-server.ts). Here process.execPath is this
 * executable, so that child starts here, and imports the script instead of parsing it as a command.
 */
function ownScript(root: string, args: string[]): string | undefined {
  if (args.length !== 1 || args[0] === undefined) return undefined;
  const path = resolve(args[0]);
  return path.startsWith(`${root}dist${sep}`) && path.endsWith('.js') && existsSync(path) ? path : undefined;
}

async function run(args: string[]): Promise<void> {
  const root = treeRoot();
  const script = ownScript(root, args);
  if (script !== undefined) {
    await import(pathToFileURL(script).href);
    return;
  }
  const cli = (await import(pathToFileURL(`${root}dist/cli/main.js`).href)) as { main: (argv: string[]) => Promise<number> };
  process.exitCode = await cli.main(args);
}

run(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`socktune: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
