import { ControlServer } from './control-server.ts';

/**
 * A `socktune server` in a process of its own, for `tune` without -c: the server must not share
 * the client's event loop, or each would measure the other. Prints its port, then serves until
 * stdin closes (the parent is gone) or SIGTERM arrives.
 */
const server = new ControlServer({ host: '127.0.0.1', port: 0 });
const address = await server.listen();
process.stdout.write(`${JSON.stringify(address)}\n`);
await new Promise<void>((resolve) => {
  process.stdin.on('end', resolve).on('error', resolve).resume();
  process.once('SIGTERM', resolve);
  // Ctrl-C reaches the whole process group: the parent decides (it finishes its trial, then closes stdin).
  process.on('SIGINT', () => {});
});
await server.close();
process.exit(0);
