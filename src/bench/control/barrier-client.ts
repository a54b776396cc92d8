import { SocktuneError } from '../../core/errors.ts';
import type { Socket } from 'node:net';
import { connect } from '../../transport/client/connect.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { clockNow, CLOCK_ROUNDS, type ReleaseMessage } from './barrier-protocol.ts';
import { ControlChannel } from './control-channel.ts';
import { CONTROL_PROTOCOL_VERSION } from './control-protocol.ts';
import { expectMessage } from './expect-message.ts';
import type { ServerTarget } from './remote-test.ts';
import { explainHandshakeFailure } from './stranger.ts';

export interface BarrierSettings {
  /** The group: every client of one test gives the same name. */
  group: string;
  /** How many clients the group waits for. */
  clients: number;
  /** Who this client is, for the server's log. */
  name: string;
  /** How long this client waits for the others before it gives up. */
  timeoutMs: number;
}

/** How a client left the barrier: when to start on its own clock, and what it measured of the rendezvous clock. */
export interface BarrierRelease {
  group: string;
  clients: number;
  /** The common start on the rendezvous clock (Unix ms). */
  releaseAtMs: number;
  /** The same instant on this client's clock (clockNow()). */
  startLocalMs: number;
  /** Rendezvous clock minus this client's, from the sample with the shortest round trip. */
  clockOffsetMs: number;
  /** That sample's round trip: the offset is known to within half of it. */
  clockRttMs: number;
}

/**
 * How far ahead a release may name the start: the server's lead is a second; a start further off is
 * not a barrier's (a client must not sleep for what a stranger's port says).
 */
const MAX_RELEASE_LEAD_MS = 10_000;
/** The largest clock offset taken from a server: a day, as merge allows. */
const MAX_CLOCK_OFFSET_MS = 86_400_000;

/** What a client hears while it waits at a barrier, and what ends its wait early. */
export interface BarrierEvents {
  /** How many of the group are there, as they come. */
  onWaiting?: (present: number, clients: number) => void;
  /** The server cannot be reached yet (its name does not resolve, nothing listens): once, before the retries. */
  onUnreachable?: (reason: string) => void;
  /** Ctrl-C. */
  signal?: AbortSignal | undefined;
}

/** How often an unreachable barrier server is tried again. */
const RETRY_MS = 1000;
/** What a server not up yet looks like: its name not resolving yet, nothing listening, no answer. */
const UNREACHABLE: readonly string[] = ['SOCKTUNE_ERR_RESOLVE', 'SOCKTUNE_ERR_REFUSED', 'SOCKTUNE_ERR_TIMEOUT', 'SOCKTUNE_ERR_PEER_GONE'];

/**
 * Joins a start barrier on a socktune server's control port: samples its clock (CLOCK_ROUNDS round
 * trips, the shortest kept, as NTP does), then waits until every client of the group is there and
 * the server names the common start. A server not reachable yet (a pod not ready, its name not yet
 * in DNS) is tried again every second: the whole wait, reaching it included, is `timeoutMs`.
 */
export async function waitAtBarrier(
  target: ServerTarget,
  settings: BarrierSettings,
  { onWaiting = () => {}, onUnreachable = () => {}, signal }: BarrierEvents = {},
): Promise<BarrierRelease> {
  const deadline = performance.now() + settings.timeoutMs;
  const handshakeMs = Math.min(settings.timeoutMs, 10_000);
  const socket = await connectWhenReachable(target, deadline, onUnreachable, signal);
  const channel = new ControlChannel(socket);
  // Leaving ends the wait: the channel then fails as a closed connection does.
  const leave = (): void => void socket.destroy();
  signal?.addEventListener('abort', leave, { once: true });
  const join = {
    type: 'barrier',
    protocol: CONTROL_PROTOCOL_VERSION,
    group: settings.group,
    clients: settings.clients,
    name: settings.name,
  };
  const joinText = JSON.stringify(join);
  try {
    channel.send(join);
    const joined = await expectMessage(channel, 'joined', handshakeMs, { token: target.authToken, startText: joinText }).catch(
      (error: unknown) => {
        throw explainHandshakeFailure(error, target, channel.firstBytes, joinText);
      },
    );
    if (joined.clients !== settings.clients)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the server's barrier waits for ${joined.clients} clients, not ${settings.clients}`);
    onWaiting(joined.present, joined.clients);
    let best = { offsetMs: 0, rttMs: Infinity };
    for (let round = 0; round < CLOCK_ROUNDS; round++) {
      const sent = clockNow();
      channel.send({ type: 'clock', t: sent });
      const reply = await expectMessage(channel, 'clock', handshakeMs);
      const back = clockNow();
      if (reply.t !== sent) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the server answered another clock sample than the one asked');
      if (back - sent < best.rttMs) best = { offsetMs: reply.serverMs - (sent + back) / 2, rttMs: back - sent };
    }
    if (!(Math.abs(best.offsetMs) <= MAX_CLOCK_OFFSET_MS))
      throw new SocktuneError(
        'SOCKTUNE_ERR_PROTOCOL',
        `the server's clock is ${best.offsetMs} ms off this client's: not a clock to start by`,
      );
    channel.send({ type: 'wait' });
    const release = await untilRelease(channel, settings, deadline, onWaiting);
    const lead = release.atMs - best.offsetMs - clockNow();
    if (lead > MAX_RELEASE_LEAD_MS)
      throw new SocktuneError(
        'SOCKTUNE_ERR_PROTOCOL',
        `the server named a start ${(lead / 1000).toFixed(1)} s away; a barrier releases within a second: not waiting for it`,
      );
    return {
      group: settings.group,
      clients: settings.clients,
      releaseAtMs: release.atMs,
      startLocalMs: release.atMs - best.offsetMs,
      clockOffsetMs: best.offsetMs,
      clockRttMs: best.rttMs,
    };
  } finally {
    signal?.removeEventListener('abort', leave);
    channel.close();
  }
}

async function untilRelease(
  channel: ControlChannel,
  settings: BarrierSettings,
  deadline: number,
  onWaiting: (present: number, clients: number) => void,
): Promise<ReleaseMessage> {
  let present = 1;
  for (;;) {
    const left = Math.max(1, deadline - performance.now());
    const message = await expectMessage(channel, ['waiting', 'release'], left).catch((error: unknown) => {
      if (!(error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_TIMEOUT')) throw error;
      throw new SocktuneError(
        'SOCKTUNE_ERR_TIMEOUT',
        `barrier ${settings.group}: ${present} of ${settings.clients} clients there after ${settings.timeoutMs / 1000} s ` +
          '(--barrier-timeout): not starting',
      );
    });
    if (message.type === 'release') return message;
    present = message.present;
    onWaiting(present, settings.clients);
  }
}

/** A connection to the barrier server, tried again every RETRY_MS until `deadline` while it cannot be reached. */
async function connectWhenReachable(
  target: ServerTarget,
  deadline: number,
  onUnreachable: (reason: string) => void,
  signal: AbortSignal | undefined,
): Promise<Socket> {
  let told = false;
  for (;;) {
    const left = deadline - performance.now();
    try {
      return await connect({ host: target.host, port: target.port, timeout: Math.ceil(Math.max(1, Math.min(left, 10_000))) });
    } catch (error) {
      const failure = explainHandshakeFailure(error, target, Buffer.alloc(0), '');
      const unreachable = failure instanceof SocktuneError && UNREACHABLE.includes(failure.code);
      if (!unreachable || signal?.aborted === true || left <= RETRY_MS) throw failure;
      if (!told) onUnreachable(failure instanceof Error ? failure.message : String(failure));
      told = true;
      await delay(RETRY_MS, undefined, { signal }).catch(() => {});
    }
  }
}
