import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { countedErrorOf, type CountedError } from '../../core/errors.ts';
import {
  anonymous,
  BufferRing,
  CQE_F_BUFFER,
  CQE_F_MORE,
  createWakeFd,
  type Mapping,
  OP,
  RECV_MULTISHOT,
  Ring,
  SQE_BUFFER_SELECT,
  unmap,
} from '../../core/io-uring.ts';
import { LINUX, libc } from '../../core/libc.ts';
import { errnoName, setBlocking } from '../../core/socket-syscalls.ts';
import { PATTERN_PERIOD, patternBytes, PatternVerifier } from '../services/pattern.ts';
import type { Admitted, PeerCounts } from '../server/admission.ts';
import type { SharedCounters } from '../server/metrics.ts';
import type { RingService } from '../server/options.ts';
import type { ToThread } from './thread-messages.ts';

const RING_ENTRIES = 4096;
/** Receive buffers per ring, and their size: a 64 KiB request arrives in one. */
const BUFFERS = 512;
const BUFFER_BYTES = 64 * 1024;
const GROUP = 0;
/**
 * Echo: buffers a connection may hold while its answers wait to be sent. Echo receives one buffer
 * at a time (no multishot: a multishot receive takes up to 32 buffers a turn before a cancel can
 * land) and none while this many wait, so a client that does not read holds at most two of the
 * ring's buffers, and the kernel's window stops it from sending more.
 */
const MAX_HELD = 2;
/** How often the ring looks at idle connections and the close deadline. */
const MAX_TICK_MS = 250;
const CANCEL_FD_ALL = (1 << 1) | (1 << 0);

/** What a completion is of, in the top half of user_data's high word; the low word is the connection's id. */
const KIND = { recv: 1, send: 2, wake: 3, tick: 4, cancel: 5 } as const;

/** Bytes waiting to be sent on one connection: a received buffer (echo) or the bytes that came with the connection token. */
interface Outgoing {
  address: number;
  sent: number;
  end: number;
  release: () => void;
}

interface Connection {
  readonly id: number;
  readonly fd: number;
  readonly peer: string;
  lastActive: number;
  /** A receive is armed (multishot, or one buffer for echo and for a connection's own buffer). */
  receiving: boolean;
  /** Operations in flight: the receive and the send; the descriptor is closed once none is. */
  ops: number;
  /** Echo: answers waiting, oldest first; one send in flight at a time keeps them in order. */
  readonly queue: Outgoing[];
  sending: boolean;
  /**
   * The ring's buffers ran out (ENOBUFS) at this connection's last receive: the next one reads into
   * its own buffer, so clients holding the ring's buffers cannot starve the others.
   */
  useOwn: boolean;
  own: Mapping | undefined;
  /** Echo: its own buffer holds an answer not yet sent. */
  ownBusy: boolean;
  /** The peer sent its FIN. */
  peerEnded: boolean;
  /** Half-closed, or ending: nothing more is answered. */
  ending: 'no' | 'half' | 'close';
  readonly verifier: PatternVerifier | undefined;
  /** Source: the stream offset of the next byte. */
  sourceOffset: number;
}

export interface RingSettings {
  service: RingService;
  counters: SharedCounters;
  peers: PeerCounts;
  idleTimeout: number;
  sourceChunkSize: number;
  onError: (code: CountedError) => void;
  /** The main thread counts each connection open as it hands it over; the ring counts only its close. */
  countedOnHandOff: boolean;
}

/**
 * One io_uring serving connections in this thread: a multishot receive per connection into the
 * ring's provided buffers, every submission of a turn batched into the one io_uring_enter that
 * also waits for the next completion. The main thread hands connections over through `port` and
 * wakes the ring through `wakeFd` (an eventfd read is always in flight).
 */
export class RingServing {
  readonly wakeFd: number;
  readonly #settings: RingSettings;
  readonly #ring: Ring;
  readonly #buffers: BufferRing;
  readonly #wakeBuffer: Mapping;
  readonly #tickSpec: Mapping;
  readonly #tickMs: number;
  readonly #pattern: Mapping | undefined;
  readonly #connections = new Map<number, Connection>();
  #nextId = 1;
  /** Set by a close message: when unfinished connections are ended, and how many were. */
  #closeDeadline: number | undefined;
  #destroyed = 0;

  constructor(settings: RingSettings) {
    this.#settings = settings;
    this.#ring = new Ring(RING_ENTRIES);
    this.#buffers = new BufferRing(this.#ring, GROUP, BUFFERS, BUFFER_BYTES);
    this.#wakeBuffer = anonymous(8);
    this.#tickMs = settings.idleTimeout > 0 ? Math.max(5, Math.min(MAX_TICK_MS, Math.floor(settings.idleTimeout / 4))) : MAX_TICK_MS;
    this.#tickSpec = anonymous(16);
    const spec = new DataView(this.#tickSpec.bytes.buffer, this.#tickSpec.bytes.byteOffset, 16);
    spec.setBigInt64(0, BigInt(Math.floor(this.#tickMs / 1000)), true);
    spec.setBigInt64(8, BigInt((this.#tickMs % 1000) * 1_000_000), true);
    if (settings.service === 'source') {
      // The pattern from every offset within one period: each send is a view of this at the stream offset mod the period.
      this.#pattern = anonymous(settings.sourceChunkSize + PATTERN_PERIOD);
      this.#pattern.bytes.set(patternBytes(settings.sourceChunkSize + PATTERN_PERIOD));
    }
    this.wakeFd = createWakeFd();
    this.#armWake();
    this.#armTick();
  }

  /** Serves until a close message has been handled and every connection has ended. */
  run(port: MessagePort): number {
    try {
      while (this.#closeDeadline === undefined || this.#connections.size > 0) {
        this.#ring.enter(1);
        this.#ring.reap((low, high, result, flags) => this.#complete(low, high, result, flags, port));
      }
      return this.#destroyed;
    } catch (error) {
      for (const connection of this.#connections.values()) this.#finish(connection);
      throw error;
    } finally {
      this.#ring.close();
      this.#buffers.close();
      for (const mapping of [this.#wakeBuffer, this.#tickSpec, this.#pattern]) if (mapping) unmap(mapping);
    }
  }

  #complete(low: number, high: number, result: number, flags: number, port: MessagePort): void {
    const kind = high >>> 16;
    if (kind === KIND.wake) return this.#onWake(port);
    if (kind === KIND.tick) return this.#onTick();
    if (kind === KIND.cancel) return;
    const connection = this.#connections.get(low);
    if (connection === undefined) {
      // A completion after its connection ended: only its buffer is left to give back.
      if ((flags & CQE_F_BUFFER) !== 0) this.#buffers.give(flags >>> 16);
      return;
    }
    if (kind === KIND.recv) this.#onReceive(connection, result, flags);
    else this.#onSent(connection, result);
    if (connection.ops === 0 && (connection.ending === 'close' || (connection.peerEnded && connection.queue.length === 0)))
      this.#finish(connection);
  }

  #onWake(port: MessagePort): void {
    this.#armWake();
    for (let message = receiveMessageOnPort(port); message !== undefined; message = receiveMessageOnPort(port)) {
      const received = message.message as ToThread;
      if (received.type === 'fd') this.#adopt(received);
      else if (received.type === 'close') this.#startClosing(received.timeoutMs);
    }
  }

  #onTick(): void {
    this.#armTick();
    const now = performance.now();
    if (this.#closeDeadline !== undefined && now >= this.#closeDeadline) {
      for (const connection of this.#connections.values()) {
        if (connection.ending === 'close') continue;
        this.#destroyed++;
        this.#end(connection);
      }
      return;
    }
    const idleTimeout = this.#settings.idleTimeout;
    if (idleTimeout <= 0) return;
    for (const connection of this.#connections.values()) {
      if (connection.ending === 'close' || now - connection.lastActive <= idleTimeout) continue;
      this.#settings.onError('SOCKTUNE_ERR_TIMEOUT');
      this.#end(connection);
    }
  }

  #adopt({ fd, peer, leftover }: Admitted): void {
    const { counters, service } = this.#settings;
    if (!this.#settings.countedOnHandOff) counters.opened();
    const connection: Connection = {
      id: this.#nextId,
      fd,
      peer,
      lastActive: performance.now(),
      receiving: false,
      ops: 0,
      queue: [],
      sending: false,
      useOwn: false,
      own: undefined,
      ownBusy: false,
      peerEnded: false,
      ending: 'no',
      verifier: service === 'verify' ? new PatternVerifier() : undefined,
      sourceOffset: 0,
    };
    this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
    this.#connections.set(connection.id, connection);
    try {
      // The ring waits for readiness itself; a descriptor in non-blocking mode would hand EAGAIN back instead.
      setBlocking(fd, true);
    } catch (error) {
      this.#settings.onError(countedErrorOf(error));
      return this.#finish(connection);
    }
    if (leftover !== undefined && leftover.length > 0) this.#received(connection, leftover, () => {});
    this.#armReceive(connection);
    if (service === 'source') this.#sendSource(connection);
    else this.#pump(connection);
  }

  /** Bytes arrived: counted, then answered (echo) or checked (verify); `release` gives their memory back once they are done with. */
  #received(connection: Connection, bytes: Uint8Array, release: () => void, address?: number): void {
    const { counters, service } = this.#settings;
    counters.addBytesIn(bytes.length);
    if (service === 'verify') counters.addBytesCorrupted(connection.verifier!.check(bytes));
    if (service !== 'echo' || connection.ending !== 'no') return release();
    if (address === undefined) {
      // The token's leftover lives in a JavaScript buffer the kernel cannot be given: a mapping of its own.
      const copy = anonymous(bytes.length);
      copy.bytes.set(bytes);
      connection.queue.push({ address: copy.address, sent: 0, end: bytes.length, release: () => unmap(copy) });
    } else connection.queue.push({ address, sent: 0, end: bytes.length, release });
  }

  #onReceive(connection: Connection, result: number, flags: number): void {
    if ((flags & CQE_F_MORE) === 0) {
      connection.receiving = false;
      connection.ops--;
    }
    if (result > 0) {
      connection.lastActive = performance.now();
      if ((flags & CQE_F_BUFFER) !== 0) {
        const id = flags >>> 16;
        this.#received(connection, this.#buffers.view(id, 0, result), () => this.#buffers.give(id), this.#buffers.addressOf(id, 0));
      } else {
        // Its own buffer: the ring's may be back by the next receive.
        connection.useOwn = false;
        connection.ownBusy = true;
        const own = connection.own!;
        this.#received(connection, own.bytes.subarray(0, result), () => (connection.ownBusy = false), own.address);
      }
      this.#pump(connection);
    } else if (result === 0) {
      connection.peerEnded = true;
      // Echo answers what it still holds first; the others have nothing more to say.
      if (this.#settings.service !== 'echo' || connection.queue.length === 0) this.#end(connection);
      return;
    } else if (result === -LINUX.ENOBUFS) connection.useOwn = true;
    else if (result !== -LINUX.ECANCELED) return this.#failed(connection, -result);
    this.#armReceive(connection);
  }

  #onSent(connection: Connection, result: number): void {
    connection.ops--;
    connection.sending = false;
    // Ended meanwhile: the buffer this send read from was kept until now (#end).
    if (connection.ending === 'close') return void connection.queue.shift()?.release();
    if (result <= 0) return this.#failed(connection, -result);
    this.#settings.counters.addBytesOut(result);
    connection.lastActive = performance.now();
    if (this.#settings.service === 'source') {
      connection.sourceOffset += result;
      return this.#sendSource(connection);
    }
    const head = connection.queue[0]!;
    head.sent += result;
    if (head.sent >= head.end) {
      connection.queue.shift();
      head.release();
      this.#armReceive(connection);
    }
    this.#pump(connection);
  }

  /** Echo: sends the oldest answer waiting, one send in flight; once all is sent after the peer's end or a close, half-closes. */
  #pump(connection: Connection): void {
    if (connection.sending || connection.ending === 'close') return;
    const head = connection.queue[0];
    if (head === undefined) {
      if (connection.peerEnded) this.#end(connection);
      else if (this.#closeDeadline !== undefined) this.#halfClose(connection);
      return;
    }
    this.#send(connection, head.address + head.sent, head.end - head.sent);
  }

  #sendSource(connection: Connection): void {
    if (connection.ending !== 'no') return;
    if (this.#closeDeadline !== undefined) return this.#halfClose(connection);
    const chunk = this.#settings.sourceChunkSize;
    this.#send(connection, this.#pattern!.address + (connection.sourceOffset % PATTERN_PERIOD), chunk);
  }

  #send(connection: Connection, address: number, length: number): void {
    const at = this.#ring.prepare(OP.SEND, connection.fd, connection.id, KIND.send << 16);
    this.#ring.setAddress(at, address);
    this.#ring.sqes.setUint32(at + 24, length, true);
    this.#ring.sqes.setUint32(at + 28, LINUX.MSG_NOSIGNAL, true);
    connection.sending = true;
    connection.ops++;
  }

  /** Arms the connection's receive unless one is armed, it has ended, or (echo) it holds MAX_HELD answers. */
  #armReceive(connection: Connection): void {
    if (connection.receiving || connection.peerEnded || connection.ending === 'close') return;
    const echo = this.#settings.service === 'echo';
    if (echo && connection.queue.length >= MAX_HELD) return;
    let at: number;
    if (connection.useOwn) {
      if (connection.ownBusy) return;
      connection.own ??= anonymous(BUFFER_BYTES);
      at = this.#ring.prepare(OP.RECV, connection.fd, connection.id, KIND.recv << 16);
      this.#ring.setAddress(at, connection.own.address);
      this.#ring.sqes.setUint32(at + 24, BUFFER_BYTES, true);
    } else {
      at = this.#ring.prepare(OP.RECV, connection.fd, connection.id, KIND.recv << 16);
      // Only echo keeps what it receives: the other services give each buffer back before the next completion is read.
      if (!echo) this.#ring.sqes.setUint16(at + 2, RECV_MULTISHOT, true);
      this.#ring.sqes.setUint8(at + 1, SQE_BUFFER_SELECT);
      this.#ring.sqes.setUint16(at + 40, GROUP, true);
    }
    connection.receiving = true;
    connection.ops++;
  }

  #armWake(): void {
    const at = this.#ring.prepare(OP.READ, this.wakeFd, 0, KIND.wake << 16);
    this.#ring.setAddress(at, this.#wakeBuffer.address);
    this.#ring.sqes.setUint32(at + 24, 8, true);
    // Offset -1: the file's own position (an eventfd has none to give).
    this.#ring.sqes.setBigInt64(at + 8, -1n, true);
  }

  #armTick(): void {
    const at = this.#ring.prepare(OP.TIMEOUT, -1, 0, KIND.tick << 16);
    this.#ring.setAddress(at, this.#tickSpec.address);
    this.#ring.sqes.setUint32(at + 24, 1, true);
  }

  /** Close asked: nothing new is answered; each connection half-closes once its answers are sent; after `timeoutMs` the rest are ended. */
  #startClosing(timeoutMs: number): void {
    this.#closeDeadline = performance.now() + timeoutMs;
    // One in the middle of a send half-closes when it completes (#pump, #sendSource), so the send is not cut short.
    for (const connection of this.#connections.values())
      if (!connection.sending && connection.queue.length === 0) this.#halfClose(connection);
  }

  /** Sends the FIN; reading goes on until the peer's own end, which closes the connection. */
  #halfClose(connection: Connection): void {
    if (connection.ending !== 'no') return;
    connection.ending = 'half';
    if (connection.peerEnded) return this.#end(connection);
    libc().shutdown(connection.fd, LINUX.SHUT_WR);
    this.#armReceive(connection);
  }

  /** Ends a connection: what is in flight is cancelled, and the descriptor is closed once nothing is. */
  #end(connection: Connection): void {
    if (connection.ending === 'close') return;
    connection.ending = 'close';
    // A send in flight still reads its buffer, which another connection's receive could be given: it goes back when the send completes.
    const inFlight = connection.sending ? connection.queue.shift() : undefined;
    for (const outgoing of connection.queue.splice(0)) outgoing.release();
    if (inFlight !== undefined) connection.queue.push(inFlight);
    if (connection.ops === 0) return this.#finish(connection);
    const at = this.#ring.prepare(OP.ASYNC_CANCEL, connection.fd, 0, KIND.cancel << 16);
    this.#ring.sqes.setUint32(at + 28, CANCEL_FD_ALL, true);
  }

  #finish(connection: Connection): void {
    if (this.#connections.get(connection.id) !== connection) return;
    this.#connections.delete(connection.id);
    for (const outgoing of connection.queue.splice(0)) outgoing.release();
    if (connection.own !== undefined) unmap(connection.own);
    libc().close(connection.fd);
    this.#settings.counters.closed();
    this.#settings.peers.remove(connection.peer);
  }

  /** A receive or send failed (errno), or a send moved nothing (0): counted, unless this server is what ended the connection. */
  #failed(connection: Connection, errno: number): void {
    if (connection.ending !== 'close' && errno !== LINUX.ECANCELED) this.#settings.onError(countedErrorOf({ code: errnoName(errno) }));
    this.#end(connection);
  }
}
