import type { EffectiveSocketOptions } from '../core/socket-options.ts';
import type { EffectiveBothEnds } from '../bench/results/result.ts';
import type { SelfCheck } from '../bench/results/result.ts';
import type { Io } from './command.ts';
import { formatBytes } from '../bench/results/format.ts';
import { SEVERAL_THREADS_PERCENT } from '../bench/results/warnings.ts';

function describeEffective(effective: EffectiveSocketOptions | null, udp: boolean): string {
  if (!effective) return 'n/a';
  const buffers = `sndbuf ${formatBytes(effective.sendBufferSize)}, rcvbuf ${formatBytes(effective.receiveBufferSize)}`;
  return udp ? buffers : `${buffers}, nodelay ${effective.noDelay ? 'on' : 'off'}`;
}

/** The lines every client command prints under its table: what the kernel applied, and how honest the numbers are. */
export function printFooter(
  io: Io,
  effective: EffectiveBothEnds,
  selfCheck: SelfCheck,
  warnings: string[],
  serverCpuPercent: number | null,
  requestedBuffers: boolean,
  /** UDP: the server's port is one socket, or one per thread (a thread model). */
  udpSockets?: 'one' | 'per-thread',
): void {
  const udp = udpSockets !== undefined;
  io.out(`effective  client: ${describeEffective(effective.client, udp)} (${udp ? 'its UDP sockets' : 'at connect'})`);
  const server = effective.server
    ? `${describeEffective(effective.server, udp)} (${
        udp
          ? udpSockets === 'one'
            ? 'its UDP socket'
            : "each of its UDP sockets, one per thread in the port's SO_REUSEPORT group"
          : 'listening socket; accepted sockets start from it'
      })`
    : 'unknown (not a socktune server: it does not say)';
  io.out(`           server: ${server}`);
  if (!requestedBuffers)
    io.out(
      udp
        ? "           no buffer size was set: the kernel's defaults hold (net.core.rmem_default, wmem_default); UDP buffers do not grow"
        : '           no buffer size was set: the kernel autotunes both ends during the test',
    );
  io.out(
    `cpu        client ${selfCheck.cpuPercent}% of one core ` +
      `(${busiestThread(selfCheck)}event-loop delay p99 ${selfCheck.eventLoopDelayP99Ms} ms${cgroupThrottling(selfCheck)})` +
      (serverCpuPercent === null ? '' : `, server ${serverCpuPercent}%`) +
      (selfCheck.scheduleLagP99Us === undefined ? '' : `, open-loop send lag p99 ${selfCheck.scheduleLagP99Us} µs`) +
      (selfCheck.clientSaturated ? '  ← client saturated' : ''),
  );
  if (selfCheck.clientThreads !== undefined) io.out(`           ${clientThreads(selfCheck.clientThreads)}`);
  for (const warning of warnings) io.err(`warning: ${warning}`);
}

/** "client threads 2, CPU of one core each: 48%, 97% (thread 2 saturated)": which of them held the run back. */
function clientThreads(threads: NonNullable<SelfCheck['clientThreads']>): string {
  const saturated = threads.flatMap(({ saturated: full }, index) => (full ? [index + 1] : []));
  const which = saturated.length === 0 ? '' : ` (thread${saturated.length > 1 ? 's' : ''} ${saturated.join(', ')} saturated)`;
  return `client threads ${threads.length}, CPU of one core each: ${threads.map(({ cpuPercent }) => `${cpuPercent}%`).join(', ')}${which}`;
}

/**
 * "busiest thread 71%, " where several of the client's threads worked (a sender thread beside the
 * event loop); with client threads their own line says it, thread by thread.
 */
function busiestThread({ cpuPercent, busiestThreadCpuPercent, clientThreads }: SelfCheck): string {
  if (clientThreads !== undefined) return '';
  if (busiestThreadCpuPercent === undefined || busiestThreadCpuPercent >= cpuPercent - SEVERAL_THREADS_PERCENT) return '';
  return `busiest thread ${busiestThreadCpuPercent}%, `;
}

/** The client's cgroup, where it has a CPU quota or was throttled: "; cgroup CPU quota 0.2, throttled 412 ms". */
function cgroupThrottling({ cpuQuota, cpuThrottledMs = 0 }: SelfCheck): string {
  if (cpuQuota === undefined && cpuThrottledMs === 0) return '';
  return `; cgroup ${cpuQuota === undefined ? '' : `CPU quota ${cpuQuota}, `}throttled ${cpuThrottledMs} ms`;
}
