/** The typical node:net echo server: one write() per chunk. Prints its port; exits when stdin closes. */
import net from 'node:net';

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
process.stdin.on('end', () => process.exit(0)).resume();
