import { SocktuneError } from '../../core/errors.ts';
import { integer, number, oneOf, validateFields, type FieldCheck } from '../../core/validate.ts';

/**
 * The start barrier on a control port: clients of one test join a group with the number of clients
 * it waits for, sample the rendezvous clock, and are all released together at one instant on that
 * clock once every one of them is there. No clock is trusted: each client measures its own offset.
 *
 *   client → barrier {group, clients, name}     server → (challenge/auth) joined {present, clients}
 *   client → clock {t} (up to CLOCK_ROUNDS)     server → clock {t, serverMs}
 *   client → wait                               server → waiting {present}* … release {atMs}
 */

/** Clock samples a client may take; the one with the shortest round trip gives its offset. */
export const CLOCK_ROUNDS = 8;
/** Group names: what render puts there (a test id), kept to a label. */
export const BARRIER_GROUP = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** The most clients one barrier group may wait for. */
export const MAX_BARRIER_CLIENTS = 10_000;

export interface BarrierMessage {
  type: 'barrier';
  protocol: number;
  group: string;
  clients: number;
  /** Who is waiting (a pod's name), for the server's log. */
  name: string;
}

export interface ClockMessage {
  type: 'clock';
  /** The client's clock when it sent this, in ms (echoed back). */
  t: number;
}

export interface WaitMessage {
  type: 'wait';
}

export type BarrierClientMessage = BarrierMessage | ClockMessage | WaitMessage;

/** The server's messages to a barrier client. */
export interface JoinedMessage {
  type: 'joined';
  present: number;
  clients: number;
}
export interface ClockReply {
  type: 'clock';
  t: number;
  /** The rendezvous clock when it answered, Unix ms. */
  serverMs: number;
}
export interface WaitingMessage {
  type: 'waiting';
  present: number;
}
export interface ReleaseMessage {
  type: 'release';
  /** The instant every client of the group starts, on the rendezvous clock (Unix ms). */
  atMs: number;
}

const name: FieldCheck = (value) =>
  typeof value === 'string' && /^[\x21-\x7e]{1,64}$/.test(value) ? undefined : '1 to 64 printable ASCII characters without spaces';
const group: FieldCheck = (value) =>
  typeof value === 'string' && BARRIER_GROUP.test(value) ? undefined : 'a name of [a-z0-9._-], up to 63';
const clock = number(0, 1e14);

const FIELDS = {
  barrier: { type: oneOf(['barrier']), protocol: integer(0, 1_000_000), group, clients: integer(1, MAX_BARRIER_CLIENTS), name },
  clock: { type: oneOf(['clock']), t: clock },
  wait: { type: oneOf(['wait']) },
} as const;
const REQUIRED: Readonly<Record<BarrierClientMessage['type'], readonly string[]>> = {
  barrier: ['protocol', 'group', 'clients', 'name'],
  clock: ['t'],
  wait: [],
};

export function isBarrierMessageType(type: unknown): type is BarrierClientMessage['type'] {
  return typeof type === 'string' && Object.hasOwn(FIELDS, type);
}

/** A client's barrier message checked field by field (the control port faces strangers). */
export function parseBarrierMessage(value: Record<string, unknown>): BarrierClientMessage {
  const type = value.type;
  if (!isBarrierMessageType(type)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unknown control message type ${JSON.stringify(type)}`);
  validateFields(value, FIELDS[type], type);
  const missing = REQUIRED[type].find((key) => !Object.hasOwn(value, key));
  if (missing !== undefined) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `${type}.${missing} is missing`);
  return value as unknown as BarrierClientMessage;
}

/** The fields of the server's barrier messages, as the client checks them. */
export const BARRIER_SERVER_MESSAGES = {
  joined: {
    spec: { type: () => undefined, present: integer(1, MAX_BARRIER_CLIENTS), clients: integer(1, MAX_BARRIER_CLIENTS) },
    required: ['present', 'clients'],
  },
  clock: { spec: { type: () => undefined, t: clock, serverMs: clock }, required: ['t', 'serverMs'] },
  waiting: { spec: { type: () => undefined, present: integer(1, MAX_BARRIER_CLIENTS) }, required: ['present'] },
  release: { spec: { type: () => undefined, atMs: clock }, required: ['atMs'] },
} as const;

/** A clock on which both ends agree to read: the wall clock at process start plus the monotonic time since (ms, sub-ms). */
export function clockNow(): number {
  return performance.timeOrigin + performance.now();
}
