import { SocktuneError } from '../../../core/errors.ts';
import { clockNow, CLOCK_ROUNDS, type BarrierMessage } from '../../control/barrier-protocol.ts';
import type { ControlChannel } from '../../control/control-channel.ts';
import { parseClientMessage } from '../../control/control-protocol.ts';

/**
 * From the last client's arrival to the common start: the release must reach every client, and
 * each set its test up (control and data connections), before the instant it names.
 */
export const RELEASE_LEAD_MS = 1000;

export interface RendezvousOptions {
  /** Clients waiting at barriers at once, every group together. */
  maxWaiting: number;
  /** How long a client may wait for the rest of its group. */
  maxWaitMs: number;
  /** How long a client may take over its clock samples, all of them, before it waits. */
  stepTimeoutMs: number;
}

interface Member {
  channel: ControlChannel;
  release: (atMs: number) => void;
}

interface Group {
  clients: number;
  members: Set<Member>;
}

/**
 * The start barriers a control server keeps: groups of clients that wait until all of a group is
 * there, then are released together at one instant on this server's clock (a client measured its
 * offset to it first). A client that leaves before the release leaves its group; a group is gone
 * once released or empty, so nothing outlives its clients.
 */
export class Rendezvous {
  readonly #options: RendezvousOptions;
  readonly #groups = new Map<string, Group>();
  #waiting = 0;

  constructor(options: RendezvousOptions) {
    this.#options = options;
  }

  /**
   * Serves one barrier client after its barrier message (and auth): its clock samples, its wait, its
   * release. It counts against maxWaiting from here on, sampling included.
   */
  async serve(channel: ControlChannel, join: BarrierMessage): Promise<void> {
    this.#check(join);
    this.#waiting++;
    try {
      channel.send({ type: 'joined', present: (this.#groups.get(join.group)?.members.size ?? 0) + 1, clients: join.clients });
      const deadline = performance.now() + this.#options.stepTimeoutMs;
      for (let rounds = 0; ; rounds++) {
        const left = Math.max(1, deadline - performance.now());
        const message = parseClientMessage(await channel.next(left, 'clock or wait message'));
        if (message.type === 'wait') break;
        if (message.type !== 'clock' || rounds === CLOCK_ROUNDS)
          throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `a barrier client sends at most ${CLOCK_ROUNDS} clock messages, then wait`);
        channel.send({ type: 'clock', t: message.t, serverMs: clockNow() });
      }
      // Checked again: the group may have been made while this client sampled the clock.
      this.#checkGroup(join);
      await this.#wait(channel, join);
    } finally {
      this.#waiting--;
    }
  }

  #check(join: BarrierMessage): void {
    this.#checkGroup(join);
    if (this.#waiting >= this.#options.maxWaiting)
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `server busy: ${this.#waiting} clients wait at barriers (max ${this.#options.maxWaiting}, --max-barrier-clients)`,
      );
  }

  #checkGroup(join: BarrierMessage): void {
    const group = this.#groups.get(join.group);
    if (group !== undefined && group.clients !== join.clients)
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `barrier ${join.group} waits for ${group.clients} clients; this client says ${join.clients}: ` +
          'give every client the same --barrier-clients',
      );
  }

  async #wait(channel: ControlChannel, join: BarrierMessage): Promise<void> {
    let group = this.#groups.get(join.group);
    if (group === undefined) this.#groups.set(join.group, (group = { clients: join.clients, members: new Set() }));
    let release!: (atMs: number) => void;
    const released = new Promise<number>((resolve) => (release = resolve));
    const member: Member = { channel, release };
    group.members.add(member);
    // Nothing more comes from a waiting client: its next "message" is its leaving, or the deadline.
    const left = channel.next(this.#options.maxWaitMs, 'release of the barrier');
    left.catch(() => {});
    try {
      const present = group.members.size;
      if (present === group.clients) {
        this.#groups.delete(join.group);
        const atMs = clockNow() + RELEASE_LEAD_MS;
        for (const each of group.members) each.release(atMs);
      } else for (const each of group.members) each.channel.send({ type: 'waiting', present });
      const atMs = await Promise.race([
        released,
        left.then(
          () => Promise.reject(new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'a barrier client sends nothing while it waits')),
          (error: unknown) => {
            if (error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_TIMEOUT')
              throw new SocktuneError(
                'SOCKTUNE_ERR_TIMEOUT',
                `barrier ${join.group}: ${group.members.size} of ${group.clients} clients came within ` +
                  `${this.#options.maxWaitMs / 1000} s (--max-duration)`,
              );
            if (error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_PEER_GONE')
              throw new SocktuneError(
                'SOCKTUNE_ERR_PEER_GONE',
                `left barrier ${join.group} before its release, ${group.members.size} of ${group.clients} clients there ` +
                  '(its own timeout, or Ctrl-C)',
              );
            throw error;
          },
        ),
      ]);
      channel.send({ type: 'release', atMs });
    } finally {
      group.members.delete(member);
      if (group.members.size === 0 && this.#groups.get(join.group) === group) this.#groups.delete(join.group);
    }
  }
}
