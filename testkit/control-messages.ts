import { ControlServer, type ControlServerOptions } from '../src/bench/servers/control/control-server.ts';
import { CONTROL_PROTOCOL_VERSION } from '../src/bench/control/control-protocol.ts';

/** A start message as a control client sends it, with the server settings and fields a test wants. */
export function start(server: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'start', protocol: CONTROL_PROTOCOL_VERSION, service: 'echo', server, maxDurationMs: 20_000, ...extra };
}

/** A server for one test; the body runs while it listens, and the server is closed whatever happens. */
export async function withServer(
  options: ControlServerOptions,
  body: (port: number, server: ControlServer) => Promise<void>,
): Promise<void> {
  const server = new ControlServer({ port: 0, ...options });
  const { port } = (await server.listen()) as { port: number };
  try {
    await body(port, server);
  } finally {
    await server.close();
  }
}
