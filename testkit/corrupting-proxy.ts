import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/** Flips one byte once `afterBytes` have passed: a single corruption the receiver must notice. */
class FlipOneByte extends Transform {
  #seen = 0;
  #done = false;
  readonly #afterBytes: number;

  constructor(afterBytes: number) {
    super();
    this.#afterBytes = afterBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#done && this.#seen + chunk.length > this.#afterBytes) {
      const copy = Buffer.from(chunk);
      copy[this.#afterBytes - this.#seen]! ^= 0xff;
      this.#done = true;
      chunk = copy;
    }
    this.#seen += chunk.length;
    callback(null, chunk);
  }
}

function relay(from: net.Socket, to: net.Socket, transform?: Transform): void {
  (transform ? from.pipe(transform) : from).pipe(to);
  from.on('error', () => to.destroy());
  to.on('error', () => from.destroy());
}

/**
 * A man in the middle for `socktune server`: relays the control channel, rewrites the data port in
 * the 'ready' message to its own, and corrupts one byte of data in the chosen direction.
 */
export async function startCorruptingProxy(
  serverPort: number,
  direction: 'to-client' | 'to-server',
  afterBytes: number,
): Promise<{ port: number; close: () => void }> {
  const servers: net.Server[] = [];
  const listen = (server: net.Server): Promise<number> =>
    new Promise((resolve) => {
      servers.push(server);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  const control = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: serverPort, host: '127.0.0.1', allowHalfOpen: true });
    relay(client, upstream);
    let pending = '';
    const onUpstream = async (chunk: Buffer): Promise<void> => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const message = JSON.parse(line) as { type: string; dataPort?: number };
        if (message.type === 'ready') {
          const dataPort = message.dataPort!;
          message.dataPort = await listen(
            net.createServer({ allowHalfOpen: true }, (dataClient) => {
              const dataUpstream = net.connect({ port: dataPort, host: '127.0.0.1', allowHalfOpen: true });
              relay(dataClient, dataUpstream, direction === 'to-server' ? new FlipOneByte(afterBytes) : undefined);
              relay(dataUpstream, dataClient, direction === 'to-client' ? new FlipOneByte(afterBytes) : undefined);
            }),
          );
        }
        client.write(`${JSON.stringify(message)}\n`);
      }
    };
    upstream.on('data', (chunk: Buffer) => void onUpstream(chunk));
    upstream.on('end', () => client.end());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  const port = await listen(control);
  return { port, close: () => servers.forEach((server) => server.close()) };
}
