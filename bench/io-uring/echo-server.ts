/**
 * Prototype: a TCP echo server on one io_uring, in one thread, through the FFI: multishot accept,
 * multishot receive into provided buffers (a buffer ring), each received buffer sent back as is
 * and returned to the ring once sent, every submission batched into the one io_uring_enter that
 * also waits for completions. Prints its port; exits when stdin closes (the bench/peers protocol).
 *
 *   node bench/io-uring/echo-server.ts
 */
import { boundPort, bindFd, createSocketFd, setReuseAddress } from '../../src/core/socket-syscalls.ts';
import { libc, LINUX } from '../../src/core/libc.ts';
import {
  ACCEPT_MULTISHOT,
  anonymous,
  CQE_F_BUFFER,
  CQE_F_MORE,
  listen,
  MSG_NOSIGNAL,
  OP,
  RECV_MULTISHOT,
  Ring,
  SQE_BUFFER_SELECT,
} from './uring.ts';

const BUFFERS = 1024;
const BUFFER_BYTES = 64 * 1024;
const GROUP = 0;
/** What a completion is of, in the top byte of user_data's low word; the fd in the rest. */
const KIND = { accept: 1, recv: 2, send: 3, stdin: 4 } as const;

const listener = createSocketFd('ipv4');
setReuseAddress(listener);
bindFd(listener, 'ipv4', '127.0.0.1', 0);
if (listen(listener, 1024) !== 0) throw new Error('listen failed');

const ring = new Ring(4096);
const buffers = ring.provideBuffers(GROUP, BUFFERS, BUFFER_BYTES);
const noDelay = Buffer.alloc(4);
noDelay.writeInt32LE(1);

const user = (kind: number, fd: number): number => kind * 0x100_0000 + fd;

function armAccept(): void {
  const at = ring.prepare(OP.ACCEPT, listener, user(KIND.accept, listener), 0);
  ring.sqes.setUint16(at + 2, ACCEPT_MULTISHOT, true);
}

function armReceive(fd: number): void {
  const at = ring.prepare(OP.RECV, fd, user(KIND.recv, fd), 0);
  ring.sqes.setUint16(at + 2, RECV_MULTISHOT, true);
  ring.sqes.setUint8(at + 1, SQE_BUFFER_SELECT);
  ring.sqes.setUint16(at + 40, GROUP, true);
}

/** Where each buffer being sent back is: a short send resends the rest of it. */
const sending = new Map<number, { sent: number; end: number }>();

/** Sends the rest of buffer `id`; the buffer rides in user_data's high word. */
function send(fd: number, id: number): void {
  const { sent, end } = sending.get(id)!;
  const at = ring.prepare(OP.SEND, fd, user(KIND.send, fd), id);
  const address = buffers.addressOf(id, sent);
  ring.sqes.setUint32(at + 16, address % 0x1_0000_0000, true);
  ring.sqes.setUint32(at + 20, Math.floor(address / 0x1_0000_0000), true);
  ring.sqes.setUint32(at + 24, end - sent, true);
  ring.sqes.setUint32(at + 28, MSG_NOSIGNAL, true);
}

const stdinBuffer = anonymous(4096);
function armStdin(): void {
  const at = ring.prepare(OP.READ, 0, user(KIND.stdin, 0), 0);
  ring.sqes.setBigUint64(at + 16, stdinBuffer.address, true);
  ring.sqes.setUint32(at + 24, 1, true);
  // Offset -1: the file's current position (a pipe has none).
  ring.sqes.setBigInt64(at + 8, -1n, true);
}

let running = true;
/** Sends in flight per connection, and the connections whose peer is done: closed once their last send completes. */
const inFlight = new Map<number, number>();
const ending = new Set<number>();
const close = (fd: number): void => {
  if ((inFlight.get(fd) ?? 0) > 0) return void ending.add(fd);
  ending.delete(fd);
  inFlight.delete(fd);
  libc().close(fd);
};

function onCompletion(low: number, high: number, result: number, flags: number): void {
  const kind = Math.floor(low / 0x100_0000);
  const fd = low % 0x100_0000;
  if (kind === KIND.accept) {
    if (result >= 0) {
      libc().setsockopt(result, LINUX.IPPROTO_TCP, LINUX.TCP_NODELAY, noDelay, 4);
      armReceive(result);
    }
    if ((flags & CQE_F_MORE) === 0) armAccept();
  } else if (kind === KIND.recv) {
    if (result > 0 && (flags & CQE_F_BUFFER) !== 0) {
      const id = flags >>> 16;
      sending.set(id, { sent: 0, end: result });
      inFlight.set(fd, (inFlight.get(fd) ?? 0) + 1);
      send(fd, id);
    } else if (result === 0 || (result < 0 && result !== -105)) {
      close(fd);
      return;
    }
    // ENOBUFS (-105): every buffer is in flight; receive again once sends give some back.
    if ((flags & CQE_F_MORE) === 0 && result !== 0) armReceive(fd);
  } else if (kind === KIND.send) {
    const state = sending.get(high)!;
    if (result > 0 && state.sent + result < state.end) {
      state.sent += result;
      send(fd, high);
    } else {
      sending.delete(high);
      buffers.give(high);
      inFlight.set(fd, inFlight.get(fd)! - 1);
      if (ending.has(fd)) close(fd);
    }
  } else if (kind === KIND.stdin && result <= 0) running = false;
  else if (kind === KIND.stdin) armStdin();
}

armAccept();
armStdin();
process.stdout.write(`${boundPort(listener)}\n`);
while (running) {
  ring.enter(1);
  ring.reap(onCompletion);
}
process.exit(0);
