/**
 * What one UDP send costs through the FFI socktune's sender threads use (koffi), against the same
 * send from C, on the same connected socket, interleaved: the floor a one-datagram-per-call sender
 * in Node sits on, whatever its own code does. Also socktune's own per-datagram work (stamping the
 * header, counting) on top of the bare call. Needs a C compiler (cc).
 *
 *   npm run bench:ffi-floor [-- --count 300000 --repetitions 7]
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { libc, LINUX } from '../src/core/libc.ts';
import { socktuneDatagrams } from '../src/framing/datagram.ts';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { median } from '../src/bench/results/stats.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '300000' }, repetitions: { type: 'string', default: '7' } } });
const count = Number(values.count);
const repetitions = Number(values.repetitions);
const DATAGRAM = 1400;

const C_SENDER = `
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
  int port = atoi(argv[1]), n = atoi(argv[2]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
  connect(fd, (struct sockaddr *)&to, sizeof to);
  char datagram[${DATAGRAM}];
  memset(datagram, 'u', sizeof datagram);
  struct timespec start, end, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < n; i++) {
    clock_gettime(CLOCK_MONOTONIC, &now); /* a send time in every datagram, as iperf3 and socktune write one */
    memcpy(datagram + 16, &now, sizeof now);
    send(fd, datagram, sizeof datagram, MSG_DONTWAIT);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  printf("%f\\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / n);
  return 0;
}
`;

// A receiver that never reads, with a tiny buffer: every datagram past it is dropped at once, so each send is the same work.
const sink = createSocket({ type: 'udp4', recvBufferSize: 4096 });
await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
const port = sink.address().port;
const directory = await mkdtemp(join(tmpdir(), 'socktune-ffi-floor-'));
try {
  await writeFile(join(directory, 'send.c'), C_SENDER);
  execFileSync('cc', ['-O2', '-o', join(directory, 'send'), join(directory, 'send.c')]);
  // The send binding is the one sender-thread.ts calls; socket and connect only set the test up.
  const { send } = libc();
  const lib = (createRequire(import.meta.url)('koffi') as typeof import('koffi')).load('libc.so.6');
  const socket = lib.func('int socket(int, int, int)') as (domain: number, type: number, protocol: number) => number;
  const connect = lib.func('int connect(int, const void *, uint32_t)') as (fd: number, address: Buffer, length: number) => number;
  const fd = socket(LINUX.AF_INET, LINUX.SOCK_DGRAM, 0);
  const address = Buffer.alloc(16);
  address.writeUInt16LE(LINUX.AF_INET, 0);
  address.writeUInt16BE(port, 2);
  address.writeUInt32BE(0x7f000001, 4);
  if (connect(fd, address, address.length) < 0) throw new Error('connect failed');
  const format = socktuneDatagrams(DATAGRAM, Buffer.alloc(16, 7), 0);
  const datagram = format.template();
  const counts = new Float64Array(4);
  const flags = LINUX.MSG_DONTWAIT | LINUX.MSG_NOSIGNAL;
  const perCall = (loop: () => void): number => {
    const started = process.hrtime.bigint();
    loop();
    return Number(process.hrtime.bigint() - started) / count;
  };
  const samples = { c: [] as number[], koffi: [] as number[], socktune: [] as number[] };
  for (let repetition = 0; repetition < repetitions; repetition++) {
    samples.c.push(Number(execFileSync(join(directory, 'send'), [String(port), String(count)]).toString()));
    samples.koffi.push(
      perCall(() => {
        for (let i = 0; i < count; i++) send(fd, datagram, datagram.length, flags);
      }),
    );
    // What sender-thread.ts does per datagram: stamp the header, send, count.
    samples.socktune.push(
      perCall(() => {
        for (let i = 0; i < count; i++) {
          format.stamp(datagram, i);
          const sent = Number(send(fd, datagram, datagram.length, flags));
          if (sent === datagram.length) {
            counts[0]!++;
            counts[1]! += sent;
            counts[3]!++;
          } else counts[2]!++;
        }
      }),
    );
  }
  const environment = collectEnvironment();
  const c = median(samples.c);
  const row = (name: string, values: number[]): string =>
    `| ${name} | ${median(values).toFixed(0)} ns | ${Math.min(...values).toFixed(0)} – ${Math.max(...values).toFixed(0)} ns | ` +
    `${median(values) >= c ? '+' : '−'}${Math.abs(median(values) - c).toFixed(0)} ns | ${(c / median(values)).toFixed(2)}× |`;
  const date = new Date().toISOString().slice(0, 10);
  const markdown = `# One UDP send: C against Node through koffi (${date})

${repetitions} interleaved repetitions of ${count} sends of ${DATAGRAM} B on one connected socket to a loopback receiver that never reads
(each datagram dropped at its full buffer, so every send does the same kernel work), medians, unpinned. Node ${environment.node},
kernel ${environment.kernel}, ${environment.cpus} × ${environment.cpuModel}.

| sender | per send | range | over C | sends/s against C's |
|---|---|---|---|---|
${row('C: clock_gettime, then send()', samples.c)}
${row('Node, koffi: send() only', samples.koffi)}
${row("Node, koffi: socktune's sender thread per datagram (stamp, send, count)", samples.socktune)}

The last row is the ceiling of a one-datagram-per-call sender on one core here, in a sender's share of the work alone.
`;
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(new URL(`./results/ffi-floor-${date}.md`, import.meta.url), markdown);
  await writeFile(new URL(`./results/ffi-floor-${date}.json`, import.meta.url), JSON.stringify({ environment, count, samples }, null, 2));
  process.stdout.write(markdown);
} finally {
  sink.close();
  await rm(directory, { recursive: true, force: true });
}
