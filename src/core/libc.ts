import { createRequire } from 'node:module';
import { SocktuneError } from './errors.ts';

/** Linux constants (identical on x86_64 and arm64). */
export const LINUX = Object.freeze({
  AF_UNIX: 1,
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  SO_LINGER: 13,
  SO_REUSEPORT: 15,
  SO_RCVTIMEO: 20,
  SO_SNDTIMEO: 21,
  IPPROTO_TCP: 6,
  SOL_UDP: 17,
  UDP_SEGMENT: 103,
  UDP_GRO: 104,
  IPPROTO_IPV6: 41,
  TCP_NODELAY: 1,
  TCP_KEEPIDLE: 4,
  TCP_INFO: 11,
  IPV6_V6ONLY: 26,
  F_GETFL: 3,
  F_SETFL: 4,
  O_NONBLOCK: 0o4000,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  MSG_NOSIGNAL: 0x4000,
  MSG_DONTWAIT: 0x40,
  RLIMIT_NOFILE: 7,
  EINTR: 4,
  EAGAIN: 11,
  EBUSY: 16,
  EPIPE: 32,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ECANCELED: 125,
});

type Native = (...args: unknown[]) => number;

export interface Libc {
  socket: Native;
  setsockopt: Native;
  getsockopt: Native;
  bind: Native;
  getsockname: Native;
  inet_pton: Native;
  close: Native;
  dup: Native;
  fcntl: Native;
  shutdown: Native;
  recv: Native;
  send: Native;
  recvfrom: Native;
  sendto: Native;
  sendfile: Native;
  poll: Native;
  getrlimit: Native;
  setrlimit: Native;
  sched_setaffinity: Native;
  sched_getaffinity: Native;
  errno: () => number;
}

let loaded: Libc | undefined;

type Koffi = typeof import('koffi');
let library: { koffi: Koffi; lib: ReturnType<Koffi['load']> } | undefined;

/** koffi and libc.so.6, loaded once for every binding made from them (here and in io-uring.ts); callers check the platform first. */
export function libcLibrary(): { koffi: Koffi; lib: ReturnType<Koffi['load']> } {
  if (library) return library;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  library = { koffi, lib: koffi.load('libc.so.6') };
  return library;
}

/**
 * libc through koffi, loaded on first use so that code paths without socket options never need
 * the FFI (and non-Linux users get a clear error only when they ask for what needs it).
 */
export function libc(): Libc {
  if (loaded) return loaded;
  if (process.platform !== 'linux') {
    throw new SocktuneError(
      'SOCKTUNE_ERR_UNSUPPORTED_PLATFORM',
      `socket options through setsockopt need Linux; this is ${process.platform}. Leave buffer ` +
        'sizes, reusePort, ipv6Only and lingerZero unset here.',
    );
  }
  const { koffi, lib } = libcLibrary();
  loaded = {
    socket: lib.func('int socket(int, int, int)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    getsockopt: lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    getsockname: lib.func('int getsockname(int, _Out_ void *, _Inout_ uint32_t *)'),
    inet_pton: lib.func('int inet_pton(int, const char *, _Out_ void *)'),
    close: lib.func('int close(int)'),
    dup: lib.func('int dup(int)'),
    fcntl: lib.func('int fcntl(int, int, int)'),
    shutdown: lib.func('int shutdown(int, int)'),
    recv: lib.func('intptr_t recv(int, _Out_ void *, size_t, int)'),
    send: lib.func('intptr_t send(int, const void *, size_t, int)'),
    recvfrom: lib.func('intptr_t recvfrom(int, _Out_ void *, size_t, int, _Out_ void *, _Inout_ uint32_t *)'),
    sendto: lib.func('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)'),
    // The offset is a 64-bit off_t the kernel advances, given as two 32-bit words in place (no BigInt per call).
    sendfile: lib.func('intptr_t sendfile(int, int, _Inout_ void *, size_t)'),
    poll: lib.func('int poll(_Inout_ void *, uint64_t, int)'),
    getrlimit: lib.func('int getrlimit(int, _Out_ void *)'),
    setrlimit: lib.func('int setrlimit(int, const void *)'),
    sched_setaffinity: lib.func('int sched_setaffinity(int, size_t, const void *)'),
    sched_getaffinity: lib.func('int sched_getaffinity(int, size_t, _Out_ void *)'),
    errno: () => koffi.errno(),
  };
  return loaded;
}
