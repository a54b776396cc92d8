import { SocktuneError } from '../../core/errors.ts';

/** iperf3's first answer to a connection: PARAM_EXCHANGE, or ACCESS_DENIED (-2) when it is busy. */
const IPERF3_FIRST_STATES = new Set([9, 0xfe]);

/**
 * A control handshake that failed, explained for the user: when the port answers something other
 * than socktune (a web server, an echo service, iperf3, sockperf), say what it looks like and which
 * flag drives it; when nothing listens, say where to start `socktune server`.
 */
export function explainHandshakeFailure(
  error: unknown,
  target: { host: string; port: number; path?: string | undefined },
  received: Buffer,
  sent: string,
): unknown {
  if (!(error instanceof SocktuneError)) return error;
  const where = target.path ?? `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const raw = `--raw -c ${where}`;
  const text = received.toString('latin1');
  if (error.code === 'SOCKTUNE_ERR_REFUSED' && received.length === 0) {
    return new SocktuneError(
      'SOCKTUNE_ERR_REFUSED',
      `${error.message}: is \`socktune server\` running on ${where}? Start it there (socktune ` +
        `server --bind ADDR), or drive any TCP service directly with ${raw}`,
      { cause: error, ...(error.errno === undefined ? {} : { errno: error.errno }) },
    );
  }
  const looksLike = (what: string, instead: string): SocktuneError =>
    new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `${where} answers like ${what}, not a socktune server: ${instead}`, { cause: error });
  if (/^(HTTP\/\d|<!DOCTYPE|<html)/i.test(text)) return looksLike('a web server (HTTP)', `to load it as a TCP service, use ${raw}`);
  if (received.length > 0 && sent.length > 0 && `${sent}\n`.startsWith(text)) {
    return looksLike('an echo service (it sent back what socktune sent)', `drive it with ${raw}`);
  }
  if (received.length > 0 && received.length <= 4 && IPERF3_FIRST_STATES.has(received[0]!) && !text.includes('\n')) {
    return looksLike('an iperf3 server', `use socktune stream --iperf3 -c ${target.host} -p ${target.port}`);
  }
  if (received.length === 0 && (error.code === 'SOCKTUNE_ERR_PEER_GONE' || error.code === 'SOCKTUNE_ERR_TIMEOUT')) {
    return new SocktuneError(
      error.code,
      `${error.message}, without a byte: is ${where} a socktune server? A sockperf server closes ` +
        `on socktune's handshake (use --sockperf); any other TCP service: ${raw}`,
      { cause: error },
    );
  }
  return error;
}
