import { hostname } from 'node:os';
import { waitAtBarrier } from '../bench/control/barrier-client.ts';
import { BARRIER_GROUP, clockNow, MAX_BARRIER_CLIENTS } from '../bench/control/barrier-protocol.ts';
import { sleep } from '../bench/engines/ticker.ts';
import type { BarrierRecord, ScheduledStart } from '../bench/results/envelope.ts';
import { round } from '../bench/results/stats.ts';
import { SocktuneError } from '../core/errors.ts';
import { authToken, DEFAULT_CONTROL_PORT, seconds, splitHostPort, str } from './client-settings.ts';
import type { Io, Values } from './command.ts';
import { formatSignedMs, parseCount } from './units.ts';

const BARRIER_FLAGS = ['barrier-clients', 'barrier-group', 'barrier-timeout'] as const;
const DEFAULT_TIMEOUT_SEC = 600;

/**
 * --barrier HOST[:PORT]: waits at that server's start barrier with the other --barrier-clients until
 * the server names the common start. The run then sets its test up and calls `untilStart`, which
 * sleeps until that instant read on this client's clock through the offset it measured (and
 * records how late it was, when setting up took longer than the server's lead). `start` is what the
 * result records: the start on the rendezvous clock, and the barrier.
 */
export async function joinStartBarrier(
  values: Values,
  io: Io,
  interrupt: AbortSignal,
): Promise<{ start: ScheduledStart & { barrier: BarrierRecord }; untilStart: () => Promise<void> } | undefined> {
  const where = str(values, 'barrier');
  if (where === undefined) {
    const stray = BARRIER_FLAGS.find((flag) => values[flag] !== undefined);
    if (stray !== undefined) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${stray} goes with --barrier HOST[:PORT]`);
    return undefined;
  }
  if (values['start-at'] !== undefined)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--barrier and --start-at are two ways to start together: give one');
  const clientsText = str(values, 'barrier-clients');
  if (clientsText === undefined)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--barrier needs --barrier-clients N: how many clients start together');
  const clients = parseCount(clientsText, '--barrier-clients', 1, MAX_BARRIER_CLIENTS);
  const group = str(values, 'barrier-group') ?? 'default';
  if (!BARRIER_GROUP.test(group))
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--barrier-group takes [a-z0-9._-], up to 63 characters, got ${JSON.stringify(group)}`);
  const timeoutMs = seconds(values, 'barrier-timeout', DEFAULT_TIMEOUT_SEC) * 1000;
  const split = splitHostPort(where);
  const port = split.port === undefined ? DEFAULT_CONTROL_PORT : parseCount(split.port, '--barrier port', 1, 65_535);
  const name =
    hostname()
      .replace(/[^\x21-\x7e]/g, '')
      .slice(0, 64) || 'client';
  let said = 0;
  // On stderr in every output mode: a run that waits for others says why it has not started.
  const release = await waitAtBarrier(
    { host: split.host, port, authToken: authToken(values) },
    { group, clients, name, timeoutMs },
    {
      onWaiting: (present) => {
        if (present !== said) io.err(`barrier ${group}: ${present} of ${clients} clients there`);
        said = present;
      },
      onUnreachable: (reason) => io.err(`barrier ${group}: ${where} not reachable yet (${reason}); trying again every second`),
      signal: interrupt,
    },
  );
  const barrier: BarrierRecord = {
    group,
    clients,
    clockOffsetMs: round(release.clockOffsetMs, 3),
    clockRttMs: round(release.clockRttMs, 3),
    lateMs: 0,
  };
  io.err(
    `released: all ${clients} start in ${Math.max(0, release.startLocalMs - clockNow()).toFixed(0)} ms (this client's clock ` +
      `${formatSignedMs(-release.clockOffsetMs)} ms from ${where}'s, ± ${(release.clockRttMs / 2).toFixed(1)} ms)`,
  );
  let started: Promise<void> | undefined;
  const untilStart = (): Promise<void> =>
    (started ??= (async () => {
      const wait = release.startLocalMs - clockNow();
      if (wait > 0) await sleep(wait, interrupt);
      else barrier.lateMs = round(-wait, 3);
      if (barrier.lateMs > 0)
        io.err(`warning: this client reached the barrier's common start ${barrier.lateMs} ms late (its test took that long to set up)`);
    })());
  return { start: { startAt: Math.round(release.releaseAtMs), barrier }, untilStart };
}
