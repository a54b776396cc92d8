import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import { SERVER_DEFAULTS, servesOnWorkers, type IoModel } from '../transport/server/options.ts';

/**
 * The limits a server pod needs for its share of one test. A `socktune server` guards a shared host
 * with defaults sized for a few clients; a rendered test knows how many clients reach each server and
 * what each opens, so every limit the test would hit is raised to what it needs, and no further.
 */

/** The shape of a test, as far as its servers' limits go. */
export interface ServerShape {
  clients: number;
  servers: number;
  /** Client i reaches server i mod M (the control server, `--raw --headless`); else kube-proxy picks a pod per connection. */
  evenSpread: boolean;
  /** Bare service ports (`socktune server service`), not the control server. */
  bare: boolean;
  /** Connections one client holds at once (`-C`, stream `-P`). */
  connections: number;
  /** crr: every transaction opens a connection and closes it. */
  connectionPerTransaction: boolean;
  ioModel: IoModel;
  workers?: number;
}

export interface ServerLimit {
  /** The server flag. */
  flag: string;
  /** What the test needs. */
  value: number;
  /** The server's own default: the flag is given only above it. */
  byDefault: number;
  /** The most the flag takes. */
  max: number;
}

/** The most clients one server gets: with the even spread ceil(N/M); through a ClusterIP, any share, all of them at worst. */
export function clientsPerServer(shape: Pick<ServerShape, 'clients' | 'servers' | 'evenSpread'>): number {
  return shape.evenSpread ? Math.ceil(shape.clients / shape.servers) : shape.clients;
}

/** Connections a client holds at once; a crr client opens its next connection before the server has seen the last one close. */
function connectionsPerClient(shape: ServerShape): number {
  return shape.connectionPerTransaction ? 2 * shape.connections : shape.connections;
}

function controlLimits(shape: ServerShape): ServerLimit[] {
  const defaults = CONTROL_SERVER_DEFAULTS;
  const clients = clientsPerServer(shape);
  const connections = connectionsPerClient(shape);
  // A thread-per-conn test's pool is --max-threads-per-test: one thread for each of its connections.
  const threadsPerTest = Math.max(
    defaults.maxThreadsPerTest,
    servesOnWorkers(shape.ioModel) ? (shape.workers ?? 0) : shape.ioModel === 'thread-per-conn' ? connections : 0,
  );
  // Without --workers a workers (or io-uring) test takes as many as the server allows a test.
  const threads = shape.ioModel === 'loop' ? 0 : servesOnWorkers(shape.ioModel) ? (shape.workers ?? threadsPerTest) : threadsPerTest;
  const maxThreads = Math.max(defaults.maxThreads, clients * threads);
  // The server's own default for threads per client, from the limits it is given.
  const threadsPerClient = Math.min(maxThreads, Math.max(threadsPerTest, Math.floor(maxThreads / 4)));
  return [
    { flag: '--max-tests', value: clients, byDefault: defaults.maxTests, max: 10_000 },
    // Several clients may reach the server from one address: behind SNAT, or pods of one node in one IPv6 /64. Server 0 (the
    // pods share one command line) also holds every client's barrier connection while its own clients start their tests.
    { flag: '--max-per-client', value: clients + shape.clients, byDefault: defaults.maxTestsPerPeer, max: 100_000 },
    // Every client is in its handshake at the start (server 0: at the barrier too), and a readiness probe may be too.
    { flag: '--max-handshakes', value: shape.clients + 1, byDefault: defaults.maxHandshakes, max: 100_000 },
    { flag: '--max-connections-per-test', value: connections, byDefault: defaults.maxConnectionsPerTest, max: 10_000_000 },
    { flag: '--max-connections', value: clients * connections, byDefault: defaults.maxConnections, max: 10_000_000 },
    { flag: '--max-threads-per-test', value: threadsPerTest, byDefault: defaults.maxThreadsPerTest, max: 65_536 },
    { flag: '--max-threads', value: clients * threads, byDefault: defaults.maxThreads, max: 65_536 },
    { flag: '--max-threads-per-client', value: clients * threads, byDefault: threadsPerClient, max: 65_536 },
    // Every client of the test waits at server 0's start barrier (the pods share one command line).
    { flag: '--max-barrier-clients', value: shape.clients, byDefault: defaults.maxBarrierClients, max: 100_000 },
  ];
}

function bareLimits(shape: ServerShape): ServerLimit[] {
  const connections = clientsPerServer(shape) * connectionsPerClient(shape);
  return [
    { flag: '--max-connections', value: connections, byDefault: SERVER_DEFAULTS.maxConnections, max: 10_000_000 },
    // kube-proxy may masquerade: every client then comes from one address.
    { flag: '--max-per-ip', value: connections, byDefault: SERVER_DEFAULTS.maxConnectionsPerIp, max: 10_000_000 },
    // thread-per-conn serves a connection only while it holds one of the pool's threads.
    ...(shape.ioModel === 'thread-per-conn'
      ? [{ flag: '--max-threads', value: connections, byDefault: SERVER_DEFAULTS.maxThreads, max: 65_536 }]
      : []),
  ];
}

/** Every limit of the server pods that grows with the test: what it needs, its default, its maximum. */
export function serverLimits(shape: ServerShape): ServerLimit[] {
  return shape.bare ? bareLimits(shape) : controlLimits(shape);
}

/** Tests a control server runs at once: its --max-tests, given or default. */
export function testsAtOnce(shape: ServerShape): number {
  return Math.max(CONTROL_SERVER_DEFAULTS.maxTests, clientsPerServer(shape));
}

/** The server flags that raise a limit above its default. */
export function serverLimitArgs(shape: ServerShape): string[] {
  return serverLimits(shape).flatMap((limit) => (limit.value > limit.byDefault ? [limit.flag, String(limit.value)] : []));
}
