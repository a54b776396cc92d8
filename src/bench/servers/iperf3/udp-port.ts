import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { countDropsFrom } from '../../../core/udp-counters.ts';
import { isUdpConnectMessage, UDP_CONNECT_REPLY } from '../../../protocols/iperf3/datagram.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';

/** A test waiting for its UDP streams: the address its control connection came from, and what takes each stream's peer. */
interface Waiting {
  address: string;
  /** Takes the stream this peer opens; false when the test wants no more. */
  take(peer: RemoteInfo): boolean;
}

/** What the port hands a stream's datagrams to. */
export interface PortStream {
  receive(datagram: Buffer): void;
}

/**
 * The UDP side of the iperf3 server's port, bound on the first UDP test and kept until the server
 * closes: one socket, shared by every UDP stream of every test, found by its peer's address and
 * port. It is bound without SO_REUSEADDR, so no other process can take the port or send from it.
 * A stream is taken when its 4-byte connect message comes from the address of a test's control
 * connection while that test waits for streams (the newest such test first); anything else gets no
 * answer, as UDP sources can be forged.
 */
export class Iperf3UdpPort {
  readonly host: string;
  readonly port: number;
  readonly #receiveBufferSize: number | undefined;
  #bound: Promise<BoundUdpSocket> | undefined;
  #socket: UdpSocket | undefined;
  readonly #waiting: Waiting[] = [];
  readonly #streams = new Map<string, PortStream>();
  /** Datagrams that were neither a known stream's nor a waiting test's connect message: counted, never answered. */
  ignored = 0;

  /** `receiveBufferSize`: SO_RCVBUF asked for at bind (a test's -w may grow it later). */
  constructor(host: string, port: number, receiveBufferSize?: number) {
    this.host = host;
    this.port = port;
    this.#receiveBufferSize = receiveBufferSize;
  }

  /** Binds the port the first time; a failure is the caller's test's (and the next UDP test tries again). */
  async open(): Promise<void> {
    this.#bound ??= bindUdp({ host: this.host, port: this.port, receiveBufferSize: this.#receiveBufferSize }).then((bound) => {
      bound.socket.on('message', (datagram, peer) => this.#dispatch(datagram, peer));
      bound.socket.on('error', () => {});
      this.#socket = bound.socket;
      return bound;
    });
    try {
      await this.#bound;
    } catch (error) {
      this.#bound = undefined;
      throw error;
    }
  }

  /** The port's socket, for the streams that send (open() first). */
  get socket(): UdpSocket {
    return this.#socket!;
  }

  /** The port socket's drops from now on (its receive buffer full), every UDP stream of the port together. */
  dropsFromNow(): () => number | null {
    const since = countDropsFrom([{ address: this.host, port: this.port }]);
    return () => since().socket;
  }

  /** -w: the port's buffers grow to what a test asks for, never shrink (other tests share them). */
  growBuffers(bytes: number): void {
    const socket = this.#socket!;
    // The kernel reports twice what was asked: a request is new only past half of what it holds.
    if (bytes * 2 > socket.getRecvBufferSize()) socket.setRecvBufferSize(bytes);
    if (bytes * 2 > socket.getSendBufferSize()) socket.setSendBufferSize(bytes);
  }

  /** Until the returned function is called, connect messages from `address` go to `take`. */
  expect(address: string, take: (peer: RemoteInfo) => boolean): () => void {
    const waiting: Waiting = { address: unmapped(address), take };
    this.#waiting.push(waiting);
    return () => {
      const index = this.#waiting.indexOf(waiting);
      if (index >= 0) this.#waiting.splice(index, 1);
    };
  }

  /** From now on `peer`'s datagrams go to `stream`, which hears that it was taken (iperf3's connect reply); the function detaches it. */
  attach(peer: RemoteInfo, stream: PortStream): () => void {
    const key = peerKey(peer);
    this.#streams.set(key, stream);
    this.#socket!.send(UDP_CONNECT_REPLY, peer.port, peer.address);
    return () => {
      if (this.#streams.get(key) === stream) this.#streams.delete(key);
    };
  }

  #dispatch(datagram: Buffer, peer: RemoteInfo): void {
    const stream = this.#streams.get(peerKey(peer));
    if (stream !== undefined) return stream.receive(datagram);
    // The port's own address and port can only be a forgery: answering it would have the server send to itself.
    const wildcard = this.host === '0.0.0.0' || this.host === '::';
    const self = peer.port === this.port && (wildcard || unmapped(peer.address) === unmapped(this.host));
    if (!self && isUdpConnectMessage(datagram)) {
      const from = unmapped(peer.address);
      // The newest test first: a stock client sends its connect messages as soon as its test asks for them.
      for (let i = this.#waiting.length - 1; i >= 0; i--) {
        const waiting = this.#waiting[i]!;
        if (waiting.address === from && waiting.take(peer)) return;
      }
    }
    this.ignored++;
  }

  async close(): Promise<void> {
    const bound = await this.#bound?.catch(() => undefined);
    this.#bound = undefined;
    this.#socket = undefined;
    bound?.socket.close();
  }
}

function peerKey(peer: RemoteInfo): string {
  return `${unmapped(peer.address)}|${peer.port}`;
}

/** An IPv4 address as an IPv6 socket reports it (::ffff:a.b.c.d) is the same peer as a.b.c.d. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
