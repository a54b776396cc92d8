#!/usr/bin/env node
// Plain JavaScript that any Node can parse, so an old Node gets a clear message instead of a syntax error.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `socktune: SOCKTUNE_ERR_NODE_VERSION: socktune needs Node.js >= 22.12.0, found ${process.versions.node}. ` +
      'Run it through npm (npx socktune) to use the Node 24 this project pins, or upgrade Node.\n',
  );
  process.exit(1);
}
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
