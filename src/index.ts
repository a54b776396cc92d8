import { assertSupportedNodeVersion } from './core/node-version.ts';

assertSupportedNodeVersion();

export { SocktuneError, ERROR_CODES, isSocktuneError, type ErrorCode, type CountedError, type ErrorCounts } from './core/errors.ts';
export { MINIMUM_NODE_VERSION, isSupportedNodeVersion } from './core/node-version.ts';
export { SOCKET_OPTION_DEFAULTS, type SocketOptions, type EffectiveSocketOptions, type BufferCapWarning } from './core/socket-options.ts';
export { createServer, SocktuneServer, type ServerAddress, type CloseResult } from './transport/server/socktune-server.ts';
export {
  SERVER_DEFAULTS,
  IO_MODELS,
  BUILTIN_SERVICES,
  validateServerOptions,
  type ServerOptions,
  type IoModel,
  type BuiltinService,
  type HandlerSpec,
  type HandlerModule,
  type ConnectionHandler,
  type ReadHandler,
} from './transport/server/options.ts';
export {
  connect,
  effectiveSocketOptions,
  validateConnectOptions,
  CONNECT_DEFAULTS,
  type ConnectOptions,
  type TunedSocket,
} from './transport/client/connect.ts';
export { BlockingConnection, type BlockingHandler } from './transport/models/blocking-connection.ts';
export {
  bindUdp,
  validateUdpSocketOptions,
  UDP_SOCKET_DEFAULTS,
  type UdpSocketOptions,
  type BoundUdpSocket,
} from './transport/udp/udp-socket.ts';
export { SendBudget } from './transport/io/send-budget.ts';
export { BufferBudget } from './transport/io/buffer-budget.ts';
export { ConnectionPool } from './transport/server/admission.ts';
export type { ServerMetrics } from './transport/server/metrics.ts';
export { MessageSocket, MESSAGE_DEFAULTS, type MessageOptions, type MessageStats } from './transport/messages/message-socket.ts';
export { connectMessages, createMessageServer, messageHandler } from './transport/messages/message-endpoints.ts';
export {
  FrameDecoder,
  encodeFrame,
  DEFAULT_MAX_MESSAGE_SIZE,
  type PrefixKind,
  type FrameDecoderOptions,
  type FrameRunHandler,
} from './framing/length-prefix.ts';
export { FrameEncoder, type FrameEncoderOptions } from './framing/frame-encoder.ts';
export { createSockperfServer, SOCKPERF_DEFAULT_PORT } from './bench/servers/sockperf/sockperf-server.ts';
export { SockperfDecoder, encodeMessage as encodeSockperfMessage } from './protocols/sockperf/codec.ts';
