#!/usr/bin/env node
// The version gate runs before the CLI is loaded, so an old Node gets one clear line, not a syntax error.
const { assertSupportedNodeVersion } = await import('../dist/core/node-version.js');
try {
  assertSupportedNodeVersion();
} catch (error) {
  process.stderr.write(`socktune: ${error.code}: ${error.message}\n`);
  process.exit(1);
}
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
