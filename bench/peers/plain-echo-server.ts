/**
 * The typical node:net server for length-prefixed (u32) messages: gathers chunks, cuts frames,
 * and answers each message with its own socket.write(). The baseline socktune's fast path is
 * measured against. Prints its port; exits when stdin closes.
 */
import net from 'node:net';

const server = net.createServer({ noDelay: true }, (socket) => {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < 4 + length) break;
      socket.write(pending.subarray(0, 4 + length));
      pending = pending.subarray(4 + length);
    }
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
process.stdin.on('end', () => process.exit(0)).resume();
