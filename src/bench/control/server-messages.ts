import { SocktuneError } from '../../core/errors.ts';
import { hasControlCharacter } from '../../core/printable.ts';
import { bufferCapWarning, type BufferCapWarning } from '../../core/socket-options.ts';
import { boolean, integer, number, validateFields, type FieldCheck, type FieldSpec } from '../../core/validate.ts';
import type { ServerMessage } from './control-protocol.ts';
import { BARRIER_SERVER_MESSAGES } from './barrier-protocol.ts';

/**
 * The client's side of the control protocol: a server is checked as strictly as it checks its
 * clients. A client may be pointed at a stranger's port, and what the server says becomes the
 * client's connections (where to connect, what to send first), its output and its result files.
 */

/** Text a server may send: short, and nothing a terminal would act on. */
function text(maxLength: number): FieldCheck {
  return (value) =>
    typeof value === 'string' && value.length <= maxLength && !hasControlCharacter(value)
      ? undefined
      : `text of at most ${maxLength} printable characters`;
}

const count = integer(0, Number.MAX_SAFE_INTEGER);

function record(spec: FieldSpec, required: readonly string[]): FieldCheck {
  return (value) => {
    try {
      validateFields(value, spec, 'value');
    } catch (error) {
      return error instanceof SocktuneError ? error.message.replace(/^value\.?/, 'an object whose ') : 'an object';
    }
    const missing = required.find((key) => !Object.hasOwn(value as object, key));
    return missing === undefined ? undefined : `an object with "${missing}"`;
  };
}

const countsByName: FieldCheck = (value) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'counts by name';
  const entries = Object.entries(value);
  return entries.length <= 256 && entries.every(([name, n]) => /^[A-Z][A-Z0-9_]{0,63}$/.test(name) && count(n) === undefined)
    ? undefined
    : 'counts by name';
};

const EFFECTIVE = record({ sendBufferSize: count, receiveBufferSize: count, noDelay: boolean, keepAlive: boolean }, [
  'sendBufferSize',
  'receiveBufferSize',
  'noDelay',
  'keepAlive',
]);
const MEMORY = record({ rssBytes: count, heapUsedBytes: count }, ['rssBytes', 'heapUsedBytes']);
const ENVIRONMENT = record(
  {
    node: text(64),
    platform: text(64),
    kernel: text(256),
    cpus: integer(1, 1_000_000),
    cpuAffinity: text(1024),
    cpuModel: text(256),
    sysctl: (value) =>
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      Object.entries(value).length <= 64 &&
      Object.entries(value).every(([name, setting]) => /^[a-z0-9_.]{1,64}$/.test(name) && text(256)(setting) === undefined)
        ? undefined
        : 'sysctl settings',
    limits: record({ openFiles: text(32) }, ['openFiles']),
  },
  ['node', 'platform', 'kernel', 'cpus', 'cpuAffinity', 'cpuModel', 'sysctl', 'limits'],
);
const METRICS = record(
  {
    connectionsCurrent: count,
    connectionsTotal: count,
    bytesIn: count,
    bytesOut: count,
    bytesCorrupted: count,
    messagesIn: count,
    errors: countsByName,
  },
  ['connectionsCurrent', 'connectionsTotal', 'bytesIn', 'bytesOut', 'bytesCorrupted', 'messagesIn', 'errors'],
);

const DATAGRAM_COUNTS = record(
  { received: count, expected: count, outOfOrder: count, duplicates: count, jitterUs: number(0, 1e12), bytes: count },
  ['received', 'expected', 'outOfOrder', 'duplicates', 'jitterUs', 'bytes'],
);
const orNull =
  (check: FieldCheck): FieldCheck =>
  (value) =>
    value === null ? undefined : check(value);
const DATAGRAMS = record(
  {
    streams: (value) =>
      Array.isArray(value) && value.length <= 128 && value.every((stream) => DATAGRAM_COUNTS(stream) === undefined)
        ? undefined
        : 'up to 128 streams of datagram counts',
    socketDrops: orNull(count),
    hostReceiveBufferErrors: orNull(count),
    foreign: count,
    sent: (value) =>
      Array.isArray(value) && value.length <= 128 && value.every((n) => count(n) === undefined) ? undefined : 'up to 128 counts',
    receives: count,
    sends: count,
  },
  ['streams', 'socketDrops', 'hostReceiveBufferErrors', 'foreign'],
);

/** Each message's fields, and which it must have; `type` is checked before. */
const MESSAGES: Readonly<Record<ServerMessage['type'], { spec: FieldSpec; required: readonly string[] }>> = {
  ready: {
    spec: {
      type: () => undefined,
      dataPort: integer(0, 65_535),
      dataPath: text(4096),
      // The 16 bytes a test's data connections send first: the client sends exactly these, nothing a server chooses to say.
      dataToken: (value) => (typeof value === 'string' && /^[0-9a-f]{32}$/.test(value) ? undefined : '32 hex digits'),
      effective: EFFECTIVE,
      warnings: () => undefined,
      environment: ENVIRONMENT,
      memory: MEMORY,
    },
    required: ['dataPort', 'effective', 'warnings', 'environment', 'memory'],
  },
  result: {
    spec: { type: () => undefined, metrics: METRICS, datagrams: DATAGRAMS, cpuPercent: number(0, 1e6), memory: MEMORY },
    required: ['metrics', 'cpuPercent', 'memory'],
  },
  error: {
    spec: {
      type: () => undefined,
      code: (value) => (typeof value === 'string' && /^SOCKTUNE_ERR_[A-Z_]{1,48}$/.test(value) ? undefined : 'a SOCKTUNE_ERR_ code'),
      message: text(2048),
    },
    required: ['code', 'message'],
  },
  challenge: {
    spec: {
      type: () => undefined,
      nonce: (value) => (typeof value === 'string' && /^[A-Za-z0-9+/=]{16,128}$/.test(value) ? undefined : 'base64'),
    },
    required: ['nonce'],
  },
  ...BARRIER_SERVER_MESSAGES,
};

/** Checks a server's message field by field; anything else is SOCKTUNE_ERR_PROTOCOL naming the field. */
export function parseServerMessage(value: unknown): ServerMessage {
  const type = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGES, type)) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'unexpected control message from the server');
  }
  const { spec, required } = MESSAGES[type as ServerMessage['type']];
  const problem = record(spec, required)(value);
  if (problem !== undefined) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the server's ${type} message is malformed: expected ${problem}`);
  }
  const message = value as ServerMessage;
  return message.type === 'ready' ? { ...message, warnings: parseCapWarnings(message.warnings) } : message;
}

/** The server's capped buffers, as facts: its words are not shown, the client renders them. */
function parseCapWarnings(value: unknown): BufferCapWarning[] {
  const valid = (item: unknown): item is Pick<BufferCapWarning, 'option' | 'requested' | 'effective'> =>
    typeof item === 'object' &&
    item !== null &&
    (item as { kind?: unknown }).kind === 'buffer-capped' &&
    ((item as { option?: unknown }).option === 'sendBufferSize' || (item as { option?: unknown }).option === 'receiveBufferSize') &&
    Number.isSafeInteger((item as { requested?: unknown }).requested) &&
    Number.isSafeInteger((item as { effective?: unknown }).effective);
  if (!Array.isArray(value) || value.length > 2 || !value.every(valid)) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the ready message carries malformed warnings');
  }
  return value.map((item) => bufferCapWarning(item.option, item.requested, item.effective));
}
