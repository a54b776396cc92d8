/**
 * socktune's echo service in a process of its own, for bench/peers. Usage:
 *   node socktune-echo-server.ts <ioModel> [blocking] [tuned] [min-threads=N]
 * "tuned" sets 256 KiB socket buffers; min-threads=N starts a thread-per-conn pool of N at listen. Prints its port; exits when stdin closes.
 */
import { createServer, type IoModel } from '../../src/index.ts';

const [ioModel = 'loop', ...flags] = process.argv.slice(2);
const server = createServer({
  ioModel: ioModel as IoModel,
  blocking: flags.includes('blocking'),
  backlog: 4096,
  // Each thread is a V8 isolate (~20 MB here): 128 of them is what a 24 GiB machine running two
  // such servers can hold; connections past that wait for a free thread.
  maxThreads: 128,
  // The memory row holds 10k idle connections.
  maxConnections: 20_000,
  maxConnectionsPerIp: 20_000,
  ...(flags.includes('tuned') ? { sendBufferSize: 256 * 1024, receiveBufferSize: 256 * 1024 } : {}),
  ...Object.fromEntries(flags.filter((flag) => flag.startsWith('min-threads=')).map((flag) => ['minThreads', Number(flag.slice(12))])),
  handler: 'echo',
});
server.on('workerCrash', (error: Error) => process.stderr.write(`worker thread crashed: ${error.message}\n`));
const address = await server.listen();
// Connections a server ends on an error are otherwise silent: say so, so the suite can tell why a server stopped answering.
let reported = '{}';
setInterval(() => {
  const errors = JSON.stringify(server.metrics().errors);
  if (errors !== reported) process.stderr.write(`connection errors so far: ${errors}\n`);
  reported = errors;
}, 500).unref();
process.stdout.write(`${'port' in address ? address.port : 0}\n`);
process.stdin.on('end', () => void server.close().then(() => process.exit(0))).resume();
