import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import { parseCpuList } from '../core/affinity.ts';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SocktuneError } from '../core/errors.ts';
import { Secret } from '../core/secret.ts';
import { MAX_TEST_DURATION_MS, type TestServerSettings } from '../bench/control/control-protocol.ts';
import type { ClientSocketSettings } from '../bench/engines/data-connections.ts';
import type { ServerTarget } from '../bench/control/remote-test.ts';
import { IO_MODELS, type IoModel } from '../transport/server/options.ts';
import { COMMON_CLIENT_FLAGS, type Values } from './command.ts';
import { MAX_SOCKET_BUFFER, parseCount, parseSeconds, parseSize } from './units.ts';

export const DEFAULT_CONTROL_PORT = CONTROL_SERVER_DEFAULTS.port;

export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** "HOST:PORT" or "[V6]:PORT" → host and port; without a port, host alone. */
export function splitHostPort(text: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, ...(bracketed[2] ? { port: bracketed[2] } : {}) };
  const colons = text.split(':').length - 1;
  if (colons !== 1) return { host: text };
  const [host, port] = text.split(':') as [string, string];
  return { host, port };
}

/**
 * The control port of a `socktune server` (-c HOST [-p PORT]), or with --raw the service itself
 * (-c HOST:PORT).
 */
export function target(values: Values): ServerTarget {
  const unix = str(values, 'unix');
  const client = str(values, 'client');
  if (unix === undefined && client === undefined) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      values.raw
        ? 'say which service to drive: --raw -c HOST:PORT'
        : 'say which server to test: -c HOST (a `socktune server` must run there) or --unix PATH',
    );
  }
  const split = client === undefined ? { host: '127.0.0.1' } : splitHostPort(client);
  const port = split.port ?? str(values, 'port');
  if (values.raw && port === undefined && unix === undefined) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--raw needs the service port: -c HOST:PORT or -p PORT');
  }
  return {
    host: split.host,
    port: port === undefined ? DEFAULT_CONTROL_PORT : parseCount(port, '--port', 1, 65535),
    path: unix,
    authToken: authToken(values),
  };
}

/**
 * --auth-token, else SOCKTUNE_AUTH_TOKEN (which, unlike a flag, does not show in `ps`). An empty
 * flag is an error; so is an empty variable for a server, which would otherwise run without auth.
 */
export function authToken(values: Values, { server = false } = {}): Secret | undefined {
  const flag = str(values, 'auth-token');
  const token = flag ?? process.env.SOCKTUNE_AUTH_TOKEN;
  if (token === '' && (flag !== undefined || server)) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      'an empty auth token would mean no authentication: give a secret of at least 16 characters ' +
        '(e.g. `openssl rand -hex ' +
        `16\`)${flag === undefined ? ', or unset SOCKTUNE_AUTH_TOKEN' : ''}`,
    );
  }
  if (token === undefined || token === '') return undefined;
  if (token.length < 16)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'an auth token must be at least 16 characters (e.g. `openssl rand -hex 16`)');
  return new Secret(token);
}

/** The longest duration a client flag takes: what a server runs at most (an hour). */
const MAX_SECONDS = MAX_TEST_DURATION_MS / 1000;

/** A duration flag: more than 0 seconds (or 0 itself with `zero`), at most an hour. A run of no time measures nothing. */
export function seconds(values: Values, name: string, fallback: number, { zero = false } = {}): number {
  const text = str(values, name);
  if (text === undefined) return fallback;
  const value = parseSeconds(text, `--${name}`);
  if ((zero ? value < 0 : value <= 0) || value > MAX_SECONDS) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--${name} takes ${zero ? '0' : 'more than 0'} to ${MAX_SECONDS} seconds, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

export function ioModel(values: Values): IoModel {
  const text = str(values, 'io-model') ?? 'loop';
  if (!(IO_MODELS as readonly string[]).includes(text)) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--io-model takes one of ${IO_MODELS.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as IoModel;
}

/** Buffer sizes from -w / --sndbuf / --rcvbuf: the same request on both ends, like iperf3's -w. */
export function bufferSizes(values: Values): { sendBufferSize?: number; receiveBufferSize?: number } {
  const window = str(values, 'window');
  const send = str(values, 'sndbuf') ?? window;
  const receive = str(values, 'rcvbuf') ?? window;
  return {
    ...(send === undefined ? {} : { sendBufferSize: parseSize(send, '--sndbuf/-w', MAX_SOCKET_BUFFER) }),
    ...(receive === undefined ? {} : { receiveBufferSize: parseSize(receive, '--rcvbuf/-w', MAX_SOCKET_BUFFER) }),
  };
}

/** -A N[,M]: this client's CPUs, and the test server threads' (iperf3's order), each a CPU or a range. */
export function affinity(values: Values): { client?: number[]; server?: number[] } {
  const text = str(values, 'affinity');
  if (text === undefined) return {};
  const parts = text.split(',');
  if (parts.length > 2)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `-A takes N or N,M (this client's CPUs, then the server's), each a CPU or a range like 0-1, got ${JSON.stringify(text)}`,
    );
  const [client, server] = parts.map((part) => cpuList(part, '-A'));
  return { ...(client!.length > 0 ? { client } : {}), ...(server === undefined ? {} : { server }) };
}

function cpuList(text: string, flag: string): number[] {
  try {
    return text === '' ? [] : parseCpuList(text, flag);
  } catch (error) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', (error as Error).message);
  }
}

export function serverSettings(values: Values): TestServerSettings {
  const serverCpus = affinity(values).server;
  const workers = str(values, 'workers');
  const model = ioModel(values);
  if (model === 'io-uring' && values.udp === true) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      '--io-model io-uring serves TCP tests, not UDP (-u): use loop, workers or thread-per-conn',
    );
  }
  if (values.blocking === true && model !== 'thread-per-conn') {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--blocking needs --io-model thread-per-conn');
  }
  if (serverCpus !== undefined && model === 'loop') {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      "-A N,M pins the test's own server threads: ask for --io-model workers, thread-per-conn or io-uring " +
        "(the loop model serves on the server's main thread: start the server with -A instead)",
    );
  }
  return {
    ioModel: model,
    ...(serverCpus === undefined ? {} : { affinity: serverCpus }),
    ...(workers === undefined ? {} : { workers: parseCount(workers, '--workers', 1, 256) }),
    ...(values.blocking === true ? { blocking: true } : {}),
    ...bufferSizes(values),
    noDelay: noDelay(values),
  };
}

function noDelay(values: Values): boolean {
  if (values.nagle === true && values['no-delay'] === true)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose one of --no-delay and --nagle');
  return values.nagle !== true;
}

export function clientSettings(values: Values): ClientSocketSettings {
  return { ...bufferSizes(values), noDelay: noDelay(values) };
}

/** The options every client engine (stream, rr, crr) takes from the command line. */
export function runOptions(values: Values): {
  target: ServerTarget;
  raw: boolean;
  durationSec: number;
  omitSec: number;
  client: ClientSocketSettings;
  server: TestServerSettings;
  intervalSec: number;
} {
  return {
    target: target(values),
    raw: values.raw === true,
    durationSec: seconds(values, 'time', Number(COMMON_CLIENT_FLAGS.time!.default)),
    omitSec: seconds(values, 'omit', Number(COMMON_CLIENT_FLAGS.omit!.default), { zero: true }),
    client: clientSettings(values),
    server: serverSettings(values),
    intervalSec: seconds(values, 'interval', Number(COMMON_CLIENT_FLAGS.interval!.default)),
  };
}

/**
 * -4 / -6 (as iperf3's): -c HOST becomes its address of that family, so every connection of the
 * run (control and data) goes over it. A literal address of the other family is an error.
 */
export async function pinAddressFamily(values: Values): Promise<void> {
  if (values.ipv4 === true && values.ipv6 === true) throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose one of -4 and -6');
  const family = values.ipv4 === true ? 4 : values.ipv6 === true ? 6 : undefined;
  const client = str(values, 'client');
  if (family === undefined || client === undefined) return;
  const { host, port } = splitHostPort(client);
  let address: string;
  try {
    address = isIP(host) !== 0 ? host : (await lookup(host, { family })).address;
  } catch (error) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_RESOLVE',
      `-${family}: ${host} has no IPv${family} address (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'})`,
    );
  }
  if (isIP(address) !== family) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `-${family}: ${host} is an IPv${isIP(address)} address`);
  const written = family === 6 && port !== undefined ? `[${address}]` : address;
  values.client = port === undefined ? written : `${written}:${port}`;
}
