/**
 * The caps every server mode enforces, rendered from the constants the code uses, so the table in
 * docs/reliability.md cannot drift from the defaults (test/reliability/limits-doc.test.ts checks it).
 */
import { CONTROL_SERVER_DEFAULTS } from '../src/bench/servers/control/control-server.ts';
import { LOG_LIMITS } from '../src/cli/log-limiter.ts';
import { MAX_QUEUED_LOG_BYTES } from '../src/cli/output.ts';
import { AUTH_BACKOFF_DEFAULTS } from '../src/core/auth-backoff.ts';
import { DEFAULT_IPV6_PREFIX } from '../src/core/client-key.ts';
import { MAX_TEST_DURATION_MS } from '../src/bench/control/control-protocol.ts';
import { DEFAULT_MAX_LINE_BYTES } from '../src/framing/json-lines.ts';
import { IPERF3_SERVER_DEFAULTS } from '../src/bench/servers/iperf3/iperf3-server.ts';
import { MAX_JSON_BYTES } from '../src/protocols/iperf3/codec.ts';
import { MIN_SEND_CHUNK_BYTES } from '../src/bench/servers/iperf3/iperf3-session.ts';
import { MAX_MESSAGE_BYTES } from '../src/protocols/sockperf/codec.ts';
import { CONNECTION_TOKEN_TIMEOUT_MS } from '../src/transport/server/connection-token.ts';
import { MESSAGE_DEFAULTS } from '../src/transport/messages/message-socket.ts';
import { SERVER_DEFAULTS } from '../src/transport/server/options.ts';

function bytes(count: number): string {
  if (count >= 1024 ** 2 && count % 1024 ** 2 === 0) return `${count / 1024 ** 2} MiB`;
  if (count >= 1024 && count % 1024 === 0) return `${count / 1024} KiB`;
  return `${count} B`;
}

const seconds = (ms: number): string => `${ms / 1000} s`;
const control = CONTROL_SERVER_DEFAULTS;
const backoff = AUTH_BACKOFF_DEFAULTS;
const iperf3 = IPERF3_SERVER_DEFAULTS;

/** [what, default and how to change it, what a client sees over it] */
const ROWS: readonly (readonly [string, string, string])[] = [
  ['**control server** (`socktune server`)', '', ''],
  ['listen address', '`127.0.0.1` (`--bind`; the address is printed)', '—'],
  ['tests at once', `${control.maxTests} (\`--max-tests\`)`, '`SOCKTUNE_ERR_REFUSED` "server busy"; logged'],
  ['control connections from one address', `${control.maxTestsPerPeer} (\`--max-per-client\`)`, '`SOCKTUNE_ERR_REFUSED` at once; logged'],
  ['handshake (start message, auth proof)', seconds(control.handshakeTimeoutMs), 'connection closed, `SOCKTUNE_ERR_TIMEOUT` logged'],
  [
    'control connections in their handshake, every client together',
    `${control.maxHandshakes} (\`--max-handshakes\`)`,
    'a newcomer over it ends the oldest handshake: a flood of silent connections from many addresses cannot keep a live client out',
  ],
  [
    'test duration',
    `${seconds(control.maxTestDurationMs)} including the client's grace (\`--max-duration\`, at most ${seconds(MAX_TEST_DURATION_MS)})`,
    'a longer ask is refused with the limit in the message; a running test is ended at its own duration + 10 s, never past this',
  ],
  [
    'idle test (no byte, no connection either way)',
    `${seconds(control.testIdleTimeoutMs)} (\`--test-idle-timeout\`)`,
    'the test is ended with `SOCKTUNE_ERR_TIMEOUT`; its slot is free again',
  ],
  [
    'threads, every test together',
    `${control.maxThreads} (\`--max-threads\`); each is a Node worker of about 15 MB resident, so the cap bounds memory too (64 threads: about 1 GB), and a process keeps some of it after they end`,
    '`SOCKTUNE_ERR_REFUSED` "server busy: the test needs N threads"',
  ],
  [
    'clients at start barriers (`--barrier`), every group together',
    `${control.maxBarrierClients} (\`--max-barrier-clients\`), counted from their join: clock samples (at most 8, all within the handshake timeout) and the wait (at most \`--max-duration\`)`,
    '`SOCKTUNE_ERR_REFUSED` "server busy: N clients wait at barriers"; a group\'s name is no secret, so on a shared server use `--auth-token` (a stranger could otherwise count as one of a group\'s clients)',
  ],
  [
    'threads per test',
    `${control.maxThreadsPerTest} (\`--max-threads-per-test\`): the most \`--workers\`, and a thread-per-conn test's pool`,
    '`SOCKTUNE_ERR_REFUSED` naming the limit; thread-per-conn connections beyond the pool wait for a thread',
  ],
  [
    'threads one client address holds, its tests together',
    `a quarter of \`--max-threads\`, at least \`--max-threads-per-test\` (${Math.max(control.maxThreadsPerTest, Math.floor(control.maxThreads / 4))}) (\`--max-threads-per-client\`)`,
    '`SOCKTUNE_ERR_REFUSED` naming the limit: one address cannot take every thread',
  ],
  [
    'data connections per test',
    `${control.maxConnectionsPerTest} (\`--max-connections-per-test\`), also per client address across tests`,
    "the newcomer is closed at once, counted as `SOCKTUNE_ERR_MAX_CONNECTIONS` in the test's result",
  ],
  [
    'data connections, every test together',
    `${control.maxConnections} (\`--max-connections\`), and at most the open-files limit less room for the control port, tests, threads and handshakes (a warning says so at start); a test holding 64 or more stops 1/16 of the cap (at most 256) short, so a small test always gets its connections`,
    'the same',
  ],
  [
    'socket buffer a client may ask for',
    `${bytes(control.maxSocketBuffer)} (\`--max-socket-buffer\`; the kernel caps it further)`,
    '`SOCKTUNE_ERR_REFUSED` naming the limit',
  ],
  [
    'write size a client may ask for (source chunk)',
    `${bytes(control.maxChunkSize)} (\`--max-chunk\`)`,
    '`SOCKTUNE_ERR_REFUSED` naming the limit',
  ],
  [
    'partly received messages, every test together',
    `${bytes(control.maxBufferedBytes)} (\`--max-buffered\`)`,
    'the connection that needed more is closed, counted as `SOCKTUNE_ERR_BUFFER_BUDGET`',
  ],
  [
    'what the server sends, every test together',
    'no cap; `--max-rate 100M` (one token bucket for every test, thread and service: source, echo, msg-echo)',
    "sends are paced; over any interval at most rate × time + 2 bursts (burst: 10 ms of the rate, at least 64 KiB) and, for echo and read handlers, one read's answer per thread; msg-echo answers go out slice by slice; nothing is booked ahead, so a client that leaves leaves no debt",
  ],
  [
    'data ports',
    "any free port; `--data-ports FROM-TO` keeps every test's data listener (TCP and UDP) in that range",
    'a test that finds no free port there is refused: `SOCKTUNE_ERR_REFUSED` "no free data port in FROM-TO (--data-ports)"',
  ],
  [
    "who may connect to a test's data port",
    'the client that started it (and the `--source-ips` it declared, which must be IP addresses)',
    'closed at once, counted as `SOCKTUNE_ERR_REFUSED`',
  ],
  [
    'auth',
    'off; `--auth-token` / `SOCKTUNE_AUTH_TOKEN` (16+ characters; empty is an error)',
    `HMAC-SHA256 over the nonce and the start message, so a relayed challenge cannot authorize other settings; each data connection must send the test's 16-byte token first (within ${seconds(CONNECTION_TOKEN_TIMEOUT_MS)}), else it is closed and counted as \`SOCKTUNE_ERR_AUTH\`; the token is never printed (results say \`"auth": true\`)`,
  ],
  [
    'failed authentication, per client',
    `${backoff.freeFailures} answered at once, then each after a wait that doubles from ${seconds(backoff.baseDelayMs)} to ${seconds(backoff.maxDelayMs)}; after ${backoff.blockAfter}, refused for ${seconds(backoff.blockMs)}`,
    '`SOCKTUNE_ERR_AUTH` "too many failed authentications", before any proof is read; one log line per burst',
  ],
  [
    'CPUs a client may pin its test to (`-A N,M`)',
    "the server's own (its `-A`, else every CPU it may run on)",
    '`SOCKTUNE_ERR_REFUSED` naming the CPUs',
  ],
  [
    'full garbage collections a client may ask for (`conns` memory readings)',
    `one a second, every client together`,
    'the reading is taken without one',
  ],
  ['`--one-off`', 'ends after the first test that authenticated and ran', 'a stranger, refused or failing, does not end it'],
  [
    'control line',
    `${bytes(DEFAULT_MAX_LINE_BYTES)}; at most 4 unanswered messages`,
    '`SOCKTUNE_ERR_FRAME_TOO_LARGE` / `SOCKTUNE_ERR_PROTOCOL`, connection closed',
  ],
  [
    'every number in a control message',
    'range-checked before use (`"__proto__"` and unknown keys are refused)',
    '`SOCKTUNE_ERR_INVALID_OPTION` naming the field',
  ],
  ['**`--iperf3`**', '', ''],
  [
    'tests at once (a test counts from its accepted, authenticated parameters to its end)',
    `${iperf3.maxTests} (\`--max-tests\`)`,
    'ACCESS_DENIED: "the server is busy running a test"; logged',
  ],
  ['tests at once from one address', `${iperf3.maxTestsPerClient} (\`--max-per-client\`)`, 'the same'],
  ['streams of every test together', `${iperf3.maxTotalStreams} (\`--max-total-streams\`)`, 'the same, for the test that would go over'],
  ["streams of one address's tests together", `${iperf3.maxStreamsPerClient} (\`--max-streams-per-client\`)`, 'the same'],
  [
    'threads moving TCP test data (sendfile senders, recv-loop receivers), every test together',
    'as many as the CPUs the server may run on (`bulkThreads`)',
    'streams that get none stay on the event loop',
  ],
  [
    'connections before their parameters (no cookie yet, or parameters not accepted yet)',
    `${iperf3.maxPending} in all, ${iperf3.maxPendingPerClient} per address (\`maxPending\`, \`maxPendingPerClient\`); the data connections a test waits for come on top`,
    'ACCESS_DENIED at once; logged',
  ],
  ['cookie', `${seconds(iperf3.cookieTimeoutMs)} (\`cookieTimeoutMs\`)`, 'connection closed, `SOCKTUNE_ERR_TIMEOUT` logged'],
  ['parameters', `${seconds(iperf3.parametersTimeoutMs)} after PARAM_EXCHANGE (\`parametersTimeoutMs\`)`, 'the same'],
  [
    'test duration (-t + -O + 5 s)',
    `${seconds(iperf3.maxDurationMs)} (\`--max-duration\`), from accept to close: every phase's own timer is cut to what is left`,
    'SERVER_ERROR: "test duration too long"; a -n/-k test is ended at the limit (SERVER_TERMINATE); a test still in another phase is ended, `SOCKTUNE_ERR_TIMEOUT` logged',
  ],
  ['streams (-P, ×2 with --bidir)', `${iperf3.maxStreams} (\`--max-streams\`)`, 'SERVER_ERROR: "number of parallel streams too large"'],
  ['socket buffer (-w)', `${bytes(iperf3.maxWindow)} (\`--max-socket-buffer\`)`, 'SERVER_ERROR: "socket buffer size too large"'],
  [
    'block length (-l)',
    `${bytes(iperf3.maxBlockLength)} (\`--max-chunk\`); the server writes whole blocks in chunks of ${bytes(MIN_SEND_CHUNK_BYTES)} or more, -n/-k cut exactly`,
    'SERVER_ERROR: "block size too large"',
  ],
  [
    'every other parameter (omit, num, blockcount, MSS, types)',
    'range-checked, never defaulted',
    "SERVER_ERROR with iperf3's own error number",
  ],
  [
    'connections at once',
    `${iperf3.maxConnections} (\`--max-connections\`), ${iperf3.maxConnectionsPerIp} per address (\`--max-per-ip\`)`,
    'closed at once by the transport',
  ],
  ['JSON message', bytes(MAX_JSON_BYTES), '`SOCKTUNE_ERR_FRAME_TOO_LARGE`, test torn down'],
  ['what -R / --bidir streams send', 'no cap; `--max-rate`', 'paced as above'],
  [
    'auth',
    "off; `--rsa-private-key-path` + `--authorized-users-path` (iperf3's own RSA scheme; `--auth-token` is refused here)",
    'SERVER_ERROR: "test authorization failed"; a token is taken once, in canonical base64 only, and one not below the key\'s modulus is refused without decrypting',
  ],
  [
    'failed authentication, per client',
    `as the control server (a connection that leaves before its parameters counts as a failure); at most ${iperf3.maxAuthPerSecond} RSA decryptions a second, every client together, and ${iperf3.maxAuthPerSecondPerClient} for one client (\`maxAuthPerSecond\`, \`maxAuthPerSecondPerClient\`), spent only on a token that passed every cheap check`,
    'a blocked client: ACCESS_DENIED at its cookie, before anything is read; over the decryptions: ACCESS_DENIED ("busy") instead of decrypting',
  ],
  ["**`--service`, `--sockperf`, and the library's `createServer`**", '', ''],
  [
    'connections at once',
    `${SERVER_DEFAULTS.maxConnections} (\`--max-connections\`, \`maxConnections\`)`,
    'the newcomer is closed at once, counted as `SOCKTUNE_ERR_MAX_CONNECTIONS` (a log line each second)',
  ],
  ['connections from one address', `${SERVER_DEFAULTS.maxConnectionsPerIp} (\`--max-per-ip\`, \`maxConnectionsPerIp\`)`, 'the same'],
  [
    'idle connection',
    `${seconds(SERVER_DEFAULTS.idleTimeout)} (\`--idle-timeout\`, \`idleTimeout\`)`,
    'closed, counted as `SOCKTUNE_ERR_TIMEOUT`',
  ],
  [
    'partly received messages',
    `${bytes(SERVER_DEFAULTS.maxBufferedBytes)} (\`--max-buffered\`, \`maxBufferedBytes\`); once half of it is held, a client holding a quarter or more gets no more`,
    'that connection closed, `SOCKTUNE_ERR_BUFFER_BUDGET`',
  ],
  [
    'length-prefixed message (msg services)',
    `${bytes(MESSAGE_DEFAULTS.maxMessageSize)} (\`maxMessageSize\`)`,
    '`SOCKTUNE_ERR_FRAME_TOO_LARGE` before anything is allocated',
  ],
  [
    'queued outgoing messages',
    `${bytes(MESSAGE_DEFAULTS.maxQueuedBytes)} per connection (\`maxQueuedBytes\`); reading stops at ${bytes(MESSAGE_DEFAULTS.highWaterMark)}`,
    "`SOCKTUNE_ERR_SLOW_CONSUMER` (or drop and count with `overflow: 'drop'`)",
  ],
  [
    'sockperf message',
    `${bytes(MAX_MESSAGE_BYTES + 1)} − 1 (sockperf's own limit)`,
    '`SOCKTUNE_ERR_FRAME_TOO_LARGE`, that connection closed',
  ],
  [
    'what the server sends',
    'no cap; `--max-rate`, `maxSendRate` (a number, or a `SendBudget` shared by servers)',
    'paced as above, every model (blocking threads sleep)',
  ],
  [
    'threads (thread-per-conn)',
    `\`maxThreads\` ${SERVER_DEFAULTS.maxThreads}; \`overflow: 'queue'\` or \`'refuse'\``,
    "refused connections are counted as `SOCKTUNE_ERR_MAX_THREADS`; while connections wait for a thread, one that moves no byte for 5 s gives its thread up (`SOCKTUNE_ERR_TIMEOUT`); waiting connections are served from the client address holding the fewest threads first, and while one waits holding at least a thread less than its share (`maxThreads` ÷ the addresses holding or waiting), the address holding the most gives up its newest connection's thread (closed, `SOCKTUNE_ERR_MAX_THREADS`): one address cannot hold the pool, though alone it may use all of it",
  ],
  ['`--auth-token`', 'refused at start: these protocols have no authentication', 'bind a private address and firewall the port instead'],
  ['**every mode**', '', ''],
  [
    'what counts as one client',
    `an IPv4 address; an IPv6 prefix of ${DEFAULT_IPV6_PREFIX} bits (\`--ipv6-prefix\`, \`ipv6Prefix\`), since one host may hold a whole /64`,
    'every per-client limit above counts under this key',
  ],
  [
    'log lines',
    `${LOG_LIMITS.perSource} per client and ${LOG_LIMITS.total} in all per ${seconds(LOG_LIMITS.windowMs)}`,
    'the rest counted by client and code, summarized at the end of the window ("… 1,503 more from 198.18.0.7 in the last 10 s: SOCKTUNE_ERR_AUTH ×1,500")',
  ],
  [
    'a log reader that goes away or stalls',
    `a closed pipe (EPIPE) stops the writes; ${bytes(MAX_QUEUED_LOG_BYTES)} queued for a slow reader at most`,
    'the server keeps serving; dropped lines are counted in a line once the reader catches up',
  ],
  [
    'what a server tells a client (client side)',
    "every field of its messages checked as strictly as the server checks clients: data port 1–65535, a data socket only beside the client's own `--unix` path, a 16-byte token, short printable text",
    '`SOCKTUNE_ERR_PROTOCOL` naming the field: a hostile server cannot point the client at a local socket, choose what it writes, or put control characters on its terminal',
  ],
  [
    'signals',
    'SIGINT, SIGTERM and SIGHUP close the server cleanly (its Unix socket file is removed)',
    'a stale socket file with nothing listening is replaced at start; a live one is refused',
  ],
  [
    'open files',
    'the soft limit is raised to the hard one at start and printed (`open files: N`)',
    'out of descriptors (EMFILE), the newcomer is refused and counted; the server keeps serving',
  ],
  ['a thread that cannot start, a handler that throws', '—', 'that connection is closed and counted; the server keeps serving'],
  [
    'shutdown',
    `\`close()\` half-closes every connection after what was already written; \`closeTimeout\` ${seconds(SERVER_DEFAULTS.closeTimeout)}`,
    'the rest are destroyed and counted',
  ],
];

export function limitsTable(): string {
  const escape = (text: string): string => text.replaceAll('|', '\\|');
  return `| limit | default (how to change it) | over the limit |\n|---|---|---|\n${ROWS.map((row) => `| ${row.map(escape).join(' | ')} |`).join('\n')}\n`;
}
