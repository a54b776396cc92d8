import type { EffectiveSocketOptions } from '../core/socket-options.ts';
import type { EffectiveBothEnds } from '../bench/result.ts';
import type { SelfCheck } from '../bench/self-check.ts';
import type { Io } from './command.ts';
import { formatBytes } from '../bench/format.ts';

function describeEffective(effective: EffectiveSocketOptions | null): string {
  if (!effective) return 'n/a';
  return `sndbuf ${formatBytes(effective.sendBufferSize)}, rcvbuf ${formatBytes(effective.receiveBufferSize)}, nodelay ${effective.noDelay ? 'on' : 'off'}`;
}

/** The lines every client command prints under its table: what the kernel applied, and how honest the numbers are. */
export function printFooter(io: Io, effective: EffectiveBothEnds, selfCheck: SelfCheck, warnings: string[], serverCpuPercent: number): void {
  io.out(`effective  client: ${describeEffective(effective.client)}`);
  io.out(`           server: ${describeEffective(effective.server)}`);
  io.out(
    `cpu        client ${selfCheck.cpuPercent}% of one core (event-loop delay p99 ${selfCheck.eventLoopDelayP99Ms} ms), server ${serverCpuPercent}%` +
      (selfCheck.clientSaturated ? '  ← client saturated' : ''),
  );
  for (const warning of warnings) io.err(`warning: ${warning}`);
}
