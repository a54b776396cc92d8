import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Where the relay stands (the client's "server") and where it comes from (the server's "client"): two loopback addresses. */
const RELAY_ADDRESS = '127.0.0.2';
const RELAY_SOURCE = '127.0.0.3';
/** A datagram held back is sent after the next one, or after this long if none comes. */
const HOLD_MS = 50;

/** What the relay does to the n-th datagram it gets from the client (from 0). */
export interface Impairment {
  drop(n: number): boolean;
  duplicate(n: number): boolean;
  /** Held back and sent after the next one: one reordering. */
  holdBack(n: number): boolean;
}

export interface ImpairedPath {
  /** The control port clients connect to (on 127.0.0.2). */
  port: number;
  /** What the relay did to the client's datagrams: the truth the receiver's counts are checked against. */
  done: { received: number; dropped: number; duplicated: number; reordered: number };
  close(): Promise<void>;
}

/**
 * A socktune server reached through an impaired path, as `tc netem` would make one (this kernel has
 * no netem): the control connection goes through a TCP proxy, which reads the server's `ready` to
 * learn the test's UDP port and puts a UDP relay on it, between the client and the server. The
 * relay drops, duplicates and reorders the client's datagrams as `impairment` says, and counts
 * what it did; the server's answers go back untouched. The server sees both connections come from
 * one address (127.0.0.3), as it requires.
 */
export async function impairedPath(serverPort: number, impairment: Impairment): Promise<ImpairedPath> {
  const done = { received: 0, dropped: 0, duplicated: 0, reordered: 0 };
  const relays: UdpSocket[] = [];
  const connections: Socket[] = [];
  const proxy: Server = createServer((client) => {
    const upstream = connect({ port: serverPort, host: '127.0.0.1', localAddress: RELAY_SOURCE });
    connections.push(client, upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    let relayed = false;
    upstream.on('data', (chunk: Buffer) => {
      const dataPort = relayed ? undefined : /"dataPort":(\d+)/.exec(chunk.toString('latin1'))?.[1];
      if (dataPort === undefined) return void client.write(chunk);
      relayed = true;
      upstream.pause();
      relay(Number(dataPort), impairment, done).then(
        (sockets) => {
          relays.push(...sockets);
          client.write(chunk);
          upstream.resume();
        },
        () => client.destroy(),
      );
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, RELAY_ADDRESS, resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    done,
    close: async () => {
      connections.forEach((socket) => socket.destroy());
      relays.forEach((socket) => socket.close());
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

function bound(address: string, port: number): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve(socket));
  });
}

/** A UDP relay on 127.0.0.2:port to the server's 127.0.0.1:port, sending from 127.0.0.3. */
async function relay(port: number, impairment: Impairment, done: ImpairedPath['done']): Promise<UdpSocket[]> {
  const front = await bound(RELAY_ADDRESS, port);
  const back = await bound(RELAY_SOURCE, 0);
  let client: RemoteInfo | undefined;
  let held: { datagram: Buffer; timer: NodeJS.Timeout } | undefined;
  const forward = (datagram: Buffer): void => void back.send(datagram, port, '127.0.0.1');
  const release = (): void => {
    if (held === undefined) return;
    clearTimeout(held.timer);
    forward(held.datagram);
    held = undefined;
  };
  front.on('message', (datagram, from) => {
    client = from;
    const n = done.received++;
    if (impairment.drop(n)) {
      done.dropped++;
      return;
    }
    if (held === undefined && impairment.holdBack(n)) {
      held = { datagram, timer: setTimeout(release, HOLD_MS) };
      return;
    }
    forward(datagram);
    if (held !== undefined) {
      done.reordered++;
      release();
    }
    if (impairment.duplicate(n)) {
      done.duplicated++;
      forward(datagram);
    }
  });
  back.on('message', (datagram) => {
    if (client !== undefined) front.send(datagram, client.port, client.address);
  });
  return [front, back];
}
