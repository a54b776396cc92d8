import { SocktuneError } from './errors.ts';

export const MINIMUM_NODE_VERSION = '22.12.0';

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

/** Throws SOCKTUNE_ERR_NODE_VERSION naming both versions: reusePort and FFI listen need 22.12+. */
export function assertSupportedNodeVersion(version: string = process.versions.node): void {
  if (isSupportedNodeVersion(version)) return;
  throw new SocktuneError(
    'SOCKTUNE_ERR_NODE_VERSION',
    `socktune needs Node.js >= ${MINIMUM_NODE_VERSION}, found ${version}. ` +
      'Run it through npm (npm test, npx socktune) to use the Node 24 this project pins, or upgrade Node.',
  );
}
