/**
 * io_uring through koffi's raw system calls, no library to install: one ring with its submission
 * and completion queues mapped into this thread, SQEs written in place through a DataView, and one
 * provided-buffer ring the kernel picks receive buffers from. The system call numbers are those of
 * Linux's generic table (the same on every architecture since io_uring came after the unification).
 */
import { SocktuneError } from './errors.ts';
import { LINUX, libc, libcLibrary } from './libc.ts';
import { errnoName } from './socket-syscalls.ts';

type Call = (...args: unknown[]) => number;

interface UringCalls {
  setup: Call;
  enter: Call;
  register: Call;
  mmap: (...args: unknown[]) => unknown;
  munmap: (address: unknown, length: number) => number;
  eventfd: (initial: number, flags: number) => number;
  write: (fd: number, bytes: Uint8Array, length: number) => number;
  address: (pointer: unknown) => bigint;
  view: (pointer: unknown, length: number) => ArrayBuffer;
  errno: () => number;
}

let calls: UringCalls | undefined;

function uring(): UringCalls {
  if (calls) return calls;
  if (process.platform !== 'linux')
    throw new SocktuneError('SOCKTUNE_ERR_UNSUPPORTED_PLATFORM', `the io-uring model needs Linux; this is ${process.platform}`);
  const { koffi, lib } = libcLibrary();
  // One symbol, three prototypes: syscall(2) takes its arguments in registers, whatever their number.
  calls = {
    setup: lib.func('syscall', 'long', ['long', 'uint32', '_Inout_ uint8_t *']) as Call,
    enter: lib.func('syscall', 'long', ['long', 'int', 'uint32', 'uint32', 'uint32', 'void *', 'size_t']) as Call,
    register: lib.func('syscall', 'long', ['long', 'int', 'uint32', 'void *', 'uint32']) as Call,
    mmap: lib.func('void *mmap(void *, size_t, int, int, int, intptr_t)') as (...args: unknown[]) => unknown,
    munmap: lib.func('int munmap(void *, size_t)') as (address: unknown, length: number) => number,
    eventfd: lib.func('int eventfd(unsigned int, int)') as (initial: number, flags: number) => number,
    write: lib.func('intptr_t write(int, const void *, size_t)') as (fd: number, bytes: Uint8Array, length: number) => number,
    address: (pointer) => koffi.address(pointer),
    view: (pointer, length) => koffi.view(pointer, length),
    errno: () => koffi.errno(),
  };
  return calls;
}

const SYS = { setup: 425, enter: 426, register: 427 } as const;
const PROT_READ_WRITE = 0x3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
const MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
const OFF_SQES = 0x10000000;
const FEAT_SINGLE_MMAP = 1;
const SETUP_SINGLE_ISSUER = 1 << 12;
const SETUP_DEFER_TASKRUN = 1 << 13;
const ENTER_GETEVENTS = 1;
const REGISTER_PBUF_RING = 22;
const EFD_CLOEXEC = 0o2000000;

export const OP = { READ: 22, SEND: 26, RECV: 27, TIMEOUT: 11, ASYNC_CANCEL: 14 } as const;
export const SQE_BUFFER_SELECT = 1 << 5;
export const RECV_MULTISHOT = 1 << 1;
export const CQE_F_BUFFER = 1;
export const CQE_F_MORE = 2;

/** A mapping of this process's memory the kernel reads and writes too; `bytes` views it. */
export interface Mapping {
  readonly address: number;
  readonly bytes: Uint8Array;
  readonly length: number;
  readonly pointer: unknown;
}

function map(length: number, fd: number, offset: number): Mapping {
  const { mmap, address, view, errno } = uring();
  const pointer =
    fd < 0
      ? mmap(null, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
      : mmap(null, length, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
  const at = address(pointer);
  if (at === BigInt.asUintN(64, -1n)) throw failure('mmap', errno());
  // User-space addresses fit in 53 bits on every 64-bit Linux: plain numbers from here on.
  return { address: Number(at), bytes: new Uint8Array(view(pointer, length)), length, pointer };
}

/** Anonymous memory for the kernel to read from or write into (provided buffers, data to send). */
export function anonymous(length: number): Mapping {
  return map(length, -1, 0);
}

export function unmap(mapping: Mapping): void {
  uring().munmap(mapping.pointer, mapping.length);
}

const SETUP_HINTS: Readonly<Record<string, string>> = {
  EPERM: ' (io_uring is off here: see /proc/sys/kernel/io_uring_disabled)',
  ENOSYS: ' (this kernel has no io_uring)',
  EINVAL: ' (the io-uring model needs Linux 6.1 or later, for IORING_SETUP_DEFER_TASKRUN)',
};

function failure(call: string, errno: number): SocktuneError {
  const name = errnoName(errno);
  const hint = call === 'io_uring_setup' ? (SETUP_HINTS[name] ?? '') : '';
  return new SocktuneError('SOCKTUNE_ERR_UNSUPPORTED_PLATFORM', `${call} failed: ${name}${hint}`, { errno: name });
}

/** Called per completion with its user_data's two 32-bit words, its result (-errno on failure) and its flags. */
export type CompletionVisitor = (low: number, high: number, result: number, flags: number) => void;

/**
 * One io_uring, used by the thread that made it only (SINGLE_ISSUER), whose completions run only
 * when that thread asks (DEFER_TASKRUN): no interrupt of the thread's own work.
 */
export class Ring {
  readonly fd: number;
  readonly sqes: DataView;
  readonly #rings: DataView;
  readonly #mappings: Mapping[];
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
    const p = new DataView(params.buffer);
    p.setUint32(8, SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN, true);
    const fd = uring().setup(SYS.setup, entries, params);
    if (fd < 0) throw failure('io_uring_setup', uring().errno());
    this.fd = fd;
    const sqEntries = p.getUint32(0, true);
    const cqEntries = p.getUint32(4, true);
    if ((p.getUint32(20, true) & FEAT_SINGLE_MMAP) === 0) {
      libc().close(fd);
      throw new SocktuneError(
        'SOCKTUNE_ERR_UNSUPPORTED_PLATFORM',
        'this kernel is too old for the io-uring model (no IORING_FEAT_SINGLE_MMAP)',
      );
    }
    const sqOff = (field: number): number => p.getUint32(40 + field * 4, true);
    const cqOff = (field: number): number => p.getUint32(80 + field * 4, true);
    const rings = map(Math.max(sqOff(6) + sqEntries * 4, cqOff(5) + cqEntries * 16), fd, 0);
    const sqes = map(sqEntries * 64, fd, OFF_SQES);
    this.#mappings = [rings, sqes];
    this.#rings = new DataView(rings.bytes.buffer, rings.bytes.byteOffset, rings.length);
    this.sqes = new DataView(sqes.bytes.buffer, sqes.bytes.byteOffset, sqes.length);
    this.#sqMask = this.#rings.getUint32(sqOff(2), true);
    this.#sqEntries = sqEntries;
    this.#sqTailAt = sqOff(1);
    this.#cqHeadAt = cqOff(0);
    this.#cqTailAt = cqOff(1);
    this.#cqMask = this.#rings.getUint32(cqOff(2), true);
    this.#cqesAt = cqOff(5);
    // The SQ array maps slot i to SQE i, once: SQEs are then written in ring order.
    for (let slot = 0; slot < sqEntries; slot++) this.#rings.setUint32(sqOff(6) + slot * 4, slot, true);
    this.#sqTail = this.#rings.getUint32(this.#sqTailAt, true);
  }

  /** The next SQE, zeroed, with the fields every operation sets; returns its offset in `sqes`. Submitted at the next enter(). */
  prepare(op: number, fd: number, low: number, high: number): number {
    if (this.#pending === this.#sqEntries) this.enter(0);
    const at = (this.#sqTail & this.#sqMask) * 64;
    const sqe = this.sqes;
    for (let word = 0; word < 64; word += 8) sqe.setBigUint64(at + word, 0n);
    sqe.setUint8(at, op);
    sqe.setInt32(at + 4, fd, true);
    sqe.setUint32(at + 32, low, true);
    sqe.setUint32(at + 36, high, true);
    this.#sqTail = (this.#sqTail + 1) >>> 0;
    this.#pending++;
    return at;
  }

  /** Sets an SQE's 64-bit address field (addr) from a plain number. */
  setAddress(at: number, address: number): void {
    this.sqes.setUint32(at + 16, address % 0x1_0000_0000, true);
    this.sqes.setUint32(at + 20, Math.floor(address / 0x1_0000_0000), true);
  }

  /** Submits what was prepared and, with `wait` > 0, waits for that many completions: one system call. */
  enter(wait: number): void {
    this.#rings.setUint32(this.#sqTailAt, this.#sqTail, true);
    const submitted = this.#pending;
    this.#pending = 0;
    const result = uring().enter(SYS.enter, this.fd, submitted, wait, wait > 0 ? ENTER_GETEVENTS : 0, null, 0);
    if (result >= 0) return;
    const errno = uring().errno();
    // A signal, or a full completion queue: reaping it is the answer either way.
    if (errno === LINUX.EINTR || errno === LINUX.EAGAIN || errno === LINUX.EBUSY) return;
    throw failure('io_uring_enter', errno);
  }

  /** Calls `visit` for each completion waiting and frees their places; returns how many. */
  reap(visit: CompletionVisitor): number {
    const cq = this.#rings;
    let head = cq.getUint32(this.#cqHeadAt, true);
    const tail = cq.getUint32(this.#cqTailAt, true);
    const count = (tail - head) >>> 0;
    while (head !== tail) {
      const at = this.#cqesAt + (head & this.#cqMask) * 16;
      visit(cq.getUint32(at, true), cq.getUint32(at + 4, true), cq.getInt32(at + 8, true), cq.getUint32(at + 12, true));
      head = (head + 1) >>> 0;
      cq.setUint32(this.#cqHeadAt, head, true);
    }
    return count;
  }

  register(opcode: number, argument: Uint8Array, count: number): void {
    if (uring().register(SYS.register, this.fd, opcode, argument, count) < 0)
      throw failure(`io_uring_register(${opcode})`, uring().errno());
  }

  /** Unmaps the queues and closes the ring; what was in flight is cancelled by the kernel. */
  close(): void {
    for (const mapping of this.#mappings) unmap(mapping);
    libc().close(this.fd);
  }
}

/** Buffers the kernel picks from for each buffer-select receive; the owner gives each back once done with its bytes. */
export class BufferRing {
  readonly size: number;
  readonly data: Mapping;
  readonly #entries: Mapping;
  readonly #ring: DataView;
  readonly #mask: number;
  #tail = 0;

  constructor(ring: Ring, group: number, count: number, size: number) {
    this.size = size;
    this.#entries = anonymous(count * 16);
    this.#ring = new DataView(this.#entries.bytes.buffer, this.#entries.bytes.byteOffset, this.#entries.length);
    this.#mask = count - 1;
    this.data = anonymous(count * size);
    const registration = new Uint8Array(40);
    const view = new DataView(registration.buffer);
    view.setBigUint64(0, BigInt(this.#entries.address), true);
    view.setUint32(8, count, true);
    view.setUint16(12, group, true);
    ring.register(REGISTER_PBUF_RING, registration, 1);
    for (let id = 0; id < count; id++) this.give(id);
  }

  /** Hands buffer `id` (back) to the kernel. */
  give(id: number): void {
    const at = (this.#tail & this.#mask) * 16;
    const address = this.data.address + id * this.size;
    this.#ring.setUint32(at, address % 0x1_0000_0000, true);
    this.#ring.setUint32(at + 4, Math.floor(address / 0x1_0000_0000), true);
    this.#ring.setUint32(at + 8, this.size, true);
    this.#ring.setUint16(at + 12, id, true);
    this.#tail = (this.#tail + 1) & 0xffff;
    // The tail shares the first entry's last two bytes (struct io_uring_buf_ring).
    this.#ring.setUint16(14, this.#tail, true);
  }

  /** Buffer `id`'s bytes from `offset` to `end`, as a view (valid until it is given back). */
  view(id: number, offset: number, end: number): Uint8Array {
    return this.data.bytes.subarray(id * this.size + offset, id * this.size + end);
  }

  addressOf(id: number, offset: number): number {
    return this.data.address + id * this.size + offset;
  }

  close(): void {
    unmap(this.data);
    unmap(this.#entries);
  }
}

/** An eventfd another thread writes to wake a ring waiting in io_uring_enter (a read of it is in flight in that ring). */
export function createWakeFd(): number {
  const fd = uring().eventfd(0, EFD_CLOEXEC);
  if (fd < 0) throw failure('eventfd', uring().errno());
  return fd;
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

export function wake(fd: number): void {
  uring().write(fd, ONE, 8);
}

export function closeWakeFd(fd: number): void {
  libc().close(fd);
}
