/**
 * A minimal io_uring through koffi's raw system calls, for the prototype echo server beside it:
 * one ring with its submission and completion queues mapped into this process, SQEs written in
 * place through a DataView, and one provided-buffer ring. Linux ≥ 6.0, x86_64 (the system call
 * numbers below). Not part of the product: bench/io-uring/README.md says why.
 */
import { createRequire } from 'node:module';

const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
const lib = koffi.load('libc.so.6');

const SYS = { io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 } as const;
// One symbol, three prototypes: syscall(2) takes its arguments in registers, whatever their number.
const setup = lib.func('syscall', 'long', ['long', 'uint32', '_Inout_ uint8_t *']) as (...args: unknown[]) => number;
const enterCall = lib.func('syscall', 'long', ['long', 'int', 'uint32', 'uint32', 'uint32', 'void *', 'size_t']) as (
  ...args: unknown[]
) => number;
const registerCall = lib.func('syscall', 'long', ['long', 'int', 'uint32', 'void *', 'uint32']) as (...args: unknown[]) => number;
const mmap = lib.func('void *mmap(void *, size_t, int, int, int, intptr_t)') as (...args: unknown[]) => unknown;
export const listen = lib.func('int listen(int, int)') as (fd: number, backlog: number) => number;
const errno = (): number => koffi.errno();

const PROT_READ_WRITE = 0x3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
const MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
const OFF_SQ_RING = 0;
const OFF_SQES = 0x10000000;
const FEAT_SINGLE_MMAP = 1;
const SETUP_SINGLE_ISSUER = 1 << 12;
const SETUP_DEFER_TASKRUN = 1 << 13;
const ENTER_GETEVENTS = 1;
const REGISTER_PBUF_RING = 22;

export const OP = { READ: 22, SEND: 26, RECV: 27, ACCEPT: 13 } as const;
export const SQE_BUFFER_SELECT = 1 << 5;
export const RECV_MULTISHOT = 1 << 1;
export const ACCEPT_MULTISHOT = 1 << 0;
export const CQE_F_BUFFER = 1;
export const CQE_F_MORE = 2;
export const MSG_NOSIGNAL = 0x4000;

function mapped(length: number, fd: number, offset: number): { address: bigint; view: DataView } {
  const pointer =
    fd < 0
      ? mmap(null, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
      : mmap(null, length, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
  const address = koffi.address(pointer);
  if (address === BigInt.asUintN(64, -1n)) throw new Error(`mmap failed: errno ${errno()}`);
  return { address, view: new DataView(koffi.view(pointer, length)) };
}

/** A region of anonymous memory the kernel reads and writes for us: the provided buffers. */
export function anonymous(length: number): { address: bigint; bytes: Uint8Array } {
  const { address, view } = mapped(length, -1, 0);
  return { address, bytes: new Uint8Array(view.buffer) };
}

export interface CompletionVisitor {
  (userLow: number, userHigh: number, result: number, flags: number): void;
}

export class Ring {
  readonly fd: number;
  /** The submission and the completion queue's rings, one mapping (IORING_FEAT_SINGLE_MMAP). */
  readonly #rings: DataView;
  readonly #sqes: DataView;
  readonly #sqMask: number;
  readonly #sqEntries: number;
  readonly #sqTailAt: number;
  readonly #cqHeadAt: number;
  readonly #cqTailAt: number;
  readonly #cqMask: number;
  readonly #cqesAt: number;
  #sqTail: number;
  #pending = 0;

  constructor(entries: number) {
    const params = new Uint8Array(120);
    new DataView(params.buffer).setUint32(8, SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN, true);
    const fd = setup(SYS.io_uring_setup, entries, params);
    if (fd < 0) throw new Error(`io_uring_setup failed: errno ${errno()} (io_uring disabled? /proc/sys/kernel/io_uring_disabled)`);
    this.fd = fd;
    const p = new DataView(params.buffer);
    const sqEntries = p.getUint32(0, true);
    const cqEntries = p.getUint32(4, true);
    if ((p.getUint32(20, true) & FEAT_SINGLE_MMAP) === 0) throw new Error('this kernel lacks IORING_FEAT_SINGLE_MMAP');
    const sqOff = (field: number): number => p.getUint32(40 + field * 4, true);
    const cqOff = (field: number): number => p.getUint32(80 + field * 4, true);
    const ringBytes = Math.max(sqOff(6) + sqEntries * 4, cqOff(5) + cqEntries * 16);
    const ring = mapped(ringBytes, fd, OFF_SQ_RING).view;
    this.#rings = ring;
    this.#sqes = mapped(sqEntries * 64, fd, OFF_SQES).view;
    this.#sqMask = ring.getUint32(sqOff(2), true);
    this.#sqEntries = sqEntries;
    this.#sqTailAt = sqOff(1);
    this.#cqHeadAt = cqOff(0);
    this.#cqTailAt = cqOff(1);
    this.#cqMask = ring.getUint32(cqOff(2), true);
    this.#cqesAt = cqOff(5);
    // The SQ array maps slot i to SQE i, once: SQEs are then written in ring order.
    for (let slot = 0; slot < sqEntries; slot++) ring.setUint32(sqOff(6) + slot * 4, slot, true);
    this.#sqTail = ring.getUint32(this.#sqTailAt, true);
  }

  /** The next SQE, zeroed, with the fields every operation sets; submitted at the next enter(). */
  prepare(op: number, fd: number, userLow: number, userHigh: number): number {
    if (this.#pending === this.#sqEntries) this.enter(0);
    const at = (this.#sqTail & this.#sqMask) * 64;
    const sqe = this.#sqes;
    for (let word = 0; word < 64; word += 8) sqe.setBigUint64(at + word, 0n);
    sqe.setUint8(at, op);
    sqe.setInt32(at + 4, fd, true);
    sqe.setUint32(at + 32, userLow, true);
    sqe.setUint32(at + 36, userHigh, true);
    this.#sqTail = (this.#sqTail + 1) >>> 0;
    this.#pending++;
    return at;
  }

  get sqes(): DataView {
    return this.#sqes;
  }

  /** Submits what was prepared and waits for `wait` completions (0: none). */
  enter(wait: number): void {
    this.#rings.setUint32(this.#sqTailAt, this.#sqTail, true);
    const submitted = this.#pending;
    this.#pending = 0;
    for (;;) {
      const result = enterCall(SYS.io_uring_enter, this.fd, submitted, wait, wait > 0 ? ENTER_GETEVENTS : 0, null, 0);
      if (result >= 0) return;
      const error = errno();
      // EINTR: a signal; EAGAIN/EBUSY: the completion queue is full, and reaping it first is the answer.
      if (error === 4 || error === 11 || error === 16) return;
      throw new Error(`io_uring_enter failed: errno ${error}`);
    }
  }

  /** Calls `visit` for each completion in the queue and frees their places; returns how many. */
  reap(visit: CompletionVisitor): number {
    const cq = this.#rings;
    let head = cq.getUint32(this.#cqHeadAt, true);
    const tail = cq.getUint32(this.#cqTailAt, true);
    const count = (tail - head) >>> 0;
    while (head !== tail) {
      const at = this.#cqesAt + (head & this.#cqMask) * 16;
      visit(cq.getUint32(at, true), cq.getUint32(at + 4, true), cq.getInt32(at + 8, true), cq.getUint32(at + 12, true));
      head = (head + 1) >>> 0;
    }
    cq.setUint32(this.#cqHeadAt, head, true);
    return count;
  }

  /** Registers a provided-buffer ring of `entries` buffers of `size` bytes as group `group`. */
  provideBuffers(group: number, entries: number, size: number): BufferRing {
    return new BufferRing(this, group, entries, size);
  }

  register(opcode: number, argument: Uint8Array, count: number): void {
    if (registerCall(SYS.io_uring_register, this.fd, opcode, argument, count) < 0)
      throw new Error(`io_uring_register ${opcode} failed: errno ${errno()}`);
  }
}

/** The kernel picks a buffer from this ring for each multishot receive; the owner returns it once done with its bytes. */
export class BufferRing {
  readonly size: number;
  readonly data: { address: bigint; bytes: Uint8Array };
  readonly #ring: DataView;
  readonly #mask: number;
  readonly #base: number;
  #tail = 0;

  constructor(ring: Ring, group: number, entries: number, size: number) {
    this.size = size;
    const memory = anonymous(entries * 16);
    this.#ring = new DataView(memory.bytes.buffer);
    this.#mask = entries - 1;
    this.data = anonymous(entries * size);
    // Buffer addresses fit in 53 bits on x86_64 user space: plain numbers from here on.
    this.#base = Number(this.data.address);
    const registration = new Uint8Array(40);
    const view = new DataView(registration.buffer);
    view.setBigUint64(0, memory.address, true);
    view.setUint32(8, entries, true);
    view.setUint16(12, group, true);
    ring.register(REGISTER_PBUF_RING, registration, 1);
    for (let id = 0; id < entries; id++) this.give(id);
  }

  /** Hands buffer `id` (back) to the kernel. */
  give(id: number): void {
    const at = (this.#tail & this.#mask) * 16;
    const address = this.#base + id * this.size;
    this.#ring.setUint32(at, address % 0x1_0000_0000, true);
    this.#ring.setUint32(at + 4, Math.floor(address / 0x1_0000_0000), true);
    this.#ring.setUint32(at + 8, this.size, true);
    this.#ring.setUint16(at + 12, id, true);
    this.#tail = (this.#tail + 1) & 0xffff;
    // The tail shares the first entry's last two bytes (struct io_uring_buf_ring).
    this.#ring.setUint16(14, this.#tail, true);
  }

  addressOf(id: number, offset: number): number {
    return this.#base + id * this.size + offset;
  }
}
