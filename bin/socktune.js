#!/usr/bin/env node
// Plain JavaScript that an old Node parses too: the version gate runs before the CLI is loaded, so
// an old Node gets one clear line, not a syntax error. A published package runs dist/; a clone that
// has not been built (`npm ci` does not build) runs src/, whose types Node strips (22.18+, 23.6+).
import { existsSync } from 'node:fs';
import module from 'node:module';
import { URL } from 'node:url';

// V8's compiled code of the CLI's modules, kept in the temporary directory between runs (Node 22.1+): a
// seventh less start-up CPU, which every short command and each of the test suite's runs pays.
module.enableCompileCache?.();

const args = process.argv.slice(2);
const built = existsSync(new URL('../dist/cli/main.js', import.meta.url));

function fail(code, message) {
  process.stderr.write(`socktune: ${code}: ${message}\n`);
  process.exit(1);
}

if (!built && !process.features?.typescript) failWithoutTypeStripping();

const from = built ? '../dist' : '../src';
const extension = built ? 'js' : 'ts';
const { assertSupportedNodeVersion, detectRunContext } = await import(`${from}/core/node-version.${extension}`);
try {
  assertSupportedNodeVersion(process.versions.node, detectRunContext(args));
} catch (error) {
  fail(error.code, error.message);
}
const { main } = await import(`${from}/cli/main.${extension}`);
process.exitCode = await main(args);

/**
 * An unbuilt clone on a Node that cannot strip types cannot load the gate in src/ either, so its
 * advice is repeated here; test/package/clone.test.ts keeps it equal to src/core/node-version.ts.
 */
function failWithoutTypeStripping() {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const found = process.versions.node;
  const head =
    major < 22 || (major === 22 && minor < 12)
      ? `socktune needs Node.js >= 22.12.0, found ${found}.`
      : `socktune in a clone without dist/ runs its TypeScript sources, which needs a Node.js that strips types (22.18 or newer), found ${found}.`;
  const words = args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`));
  const run = `\`npx socktune${words.map((word) => ` ${word}`).join('')}\` or \`npm test\``;
  const pinnedNode = existsSync(new URL('../node_modules/node/package.json', import.meta.url));
  const advice = pinnedNode
    ? `This clone pins Node 24 as a devDependency: run ${run}, which use it.`
    : `Run \`npm ci\` first (it installs the Node 24 this clone pins), then ${run}.`;
  fail('SOCKTUNE_ERR_NODE_VERSION', `${head} ${advice}`);
}
