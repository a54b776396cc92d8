import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** Where a command writes: stdout for results, stderr for progress and warnings. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTty: boolean;
  /** The terminal's width when stdout is one; undefined when piped (tables then print at full width). */
  columns?: number | undefined;
}

/**
 * One flag: its help, its parseArgs spec, its placeholder where the shared one does not fit, and its default, which help and parsing
 * both read.
 */
export interface FlagDefinition {
  help: string;
  spec: OptionSpec[string];
  value?: string;
  default?: string;
}

/** The flag's text as given, else its default. */
export function flagText(values: Values, flags: Command['flags'], name: string): string | undefined {
  const given = values[name];
  return typeof given === 'string' ? given : flags[name]?.default;
}

/** The word that names a mode on the command line: `iperf3` for `server iperf3`. */
export function modeWord(mode: Command): string {
  return mode.name.split(' ').at(-1)!;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Flag name → description, spec, and (for flags that take one) the placeholder of its value when the shared one does not fit. */
  flags: Record<string, FlagDefinition>;
  examples: string[];
  /** What the arguments after the flags are, for commands that take any (`socktune merge a.json b.json`). */
  positionals?: string;
  /** The values those arguments may take, when they are a closed set (for completion). */
  positionalChoices?: readonly string[];
  /** Modes chosen by the first argument (`socktune server iperf3`) or by the older flag (`--iperf3`, `--service NAME`). */
  subcommands?: readonly Command[];
  /** Flags this command refuses with a reason worth more than "unknown option": the security flags above all. */
  refusals?: Readonly<Record<string, string>>;
  run(values: Values, io: Io, positionals: string[]): Promise<number>;
}

export const COMMON_OUTPUT_FLAGS: Command['flags'] = {
  json: { help: 'print one JSON document (schema socktune/1) at the end (iperf3 -J)', spec: { type: 'boolean', short: 'J' } },
  logfile: {
    help: 'write everything this command prints to FILE, appended, instead of the terminal (iperf3 --logfile)',
    spec: { type: 'string' },
    value: '<file>',
  },
  quiet: { help: 'print only the summary', spec: { type: 'boolean', short: 'q' } },
};

/** iperf3 flags whose meaning differs here, or that socktune does not take: what a user of iperf3 should do instead. */
export const IPERF3_HABITS: Readonly<Record<string, string>> = {
  C:
    "in iperf3 -C sets the congestion control; socktune uses the kernel's " +
    "(net.ipv4.tcp_congestion_control, in --json's environment), and in rr and crr -C means " +
    'connections',
  b: 'stream -b paces each connection as iperf3 -b does; rr --rate paces requests, and a server caps what it sends with --max-rate',
  f: 'stream -f chooses the unit of rates as iperf3 -f does; --json gives plain bits/s and bytes',
  Z: 'stream -Z sends with sendfile as iperf3 -Z does; the other commands exchange messages they write',
};

export const COMMON_CLIENT_FLAGS: Command['flags'] = {
  client: {
    help: 'host of the socktune server (with --raw: HOST:PORT of any service); a comma list goes with --pick',
    spec: { type: 'string', short: 'c' },
  },
  pick: {
    help:
      "with -c HOST,HOST,...: reach entry N mod the list's length, counted from 0; clients given one list and " +
      'their own N (an Indexed Job: --pick $(JOB_COMPLETION_INDEX)) spread evenly, client i on host i mod M',
    spec: { type: 'string' },
    value: '<n>',
  },
  raw: { help: 'drive any TCP service directly: no socktune server, client-side numbers only', spec: { type: 'boolean' } },
  repeat: { help: 'run N times; report the median run and the spread', spec: { type: 'string' } },
  port: { help: 'control port of the server', spec: { type: 'string', short: 'p' }, default: String(CONTROL_SERVER_DEFAULTS.port) },
  unix: { help: 'Unix-domain control socket of the server instead of -c/-p', spec: { type: 'string' } },
  time: { help: 'seconds to measure', spec: { type: 'string', short: 't' }, default: '10' },
  omit: { help: 'warm-up seconds left out of the summary (iperf3 -O)', spec: { type: 'string', short: 'O' }, default: '0' },
  interval: { help: 'seconds between progress lines', spec: { type: 'string', short: 'i' }, default: '1' },
  ndjson: { help: 'print one JSON line per interval, then the final document', spec: { type: 'boolean' } },
  ipv4: { help: 'reach -c HOST over IPv4 only (iperf3 -4)', spec: { type: 'boolean', short: '4' } },
  ipv6: { help: 'reach -c HOST over IPv6 only (iperf3 -6)', spec: { type: 'boolean', short: '6' } },
  'auth-token': {
    help: 'shared secret of a server started with --auth-token (better: SOCKTUNE_AUTH_TOKEN, which stays out of ps)',
    spec: { type: 'string' },
  },
  affinity: {
    help:
      "pin this client to CPUs N, and the test's server threads to M (workers, thread-per-conn, io-uring), " +
      'as iperf3 -A: N or N,M, each a CPU or a range (0-1)',
    spec: { type: 'string', short: 'A' },
  },
  'start-at': {
    help: 'wait until this wall-clock time (Unix milliseconds, `date +%s%3N`) so runs on several hosts start together; see socktune merge',
    spec: { type: 'string' },
  },
  'start-late-tolerance': {
    help:
      'with --start-at: refuse to run when this process reaches that time more than this late, ' +
      'as it would not measure the same seconds',
    spec: { type: 'string' },
    value: '<seconds>',
    default: '1',
  },
  barrier: {
    help:
      'start together with the other clients of a test: wait at this socktune server (HOST[:PORT], its control port) until ' +
      '--barrier-clients are there, each having measured its clock against the server, then all start at one instant of its clock',
    spec: { type: 'string' },
    value: '<host[:port]>',
  },
  'barrier-clients': { help: 'with --barrier: how many clients start together', spec: { type: 'string' }, value: '<n>' },
  'barrier-group': {
    help: 'with --barrier: the name every client of this test gives ([a-z0-9._-]; a test id)',
    spec: { type: 'string' },
    value: '<name>',
    default: 'default',
  },
  'barrier-timeout': {
    help: 'with --barrier: give up when the others are not all there within this many seconds',
    spec: { type: 'string' },
    value: '<seconds>',
    default: '600',
  },
  'io-model': {
    help:
      'server I/O model: loop, workers, thread-per-conn, io-uring (default loop; io-uring: stream, rr, crr, conns over TCP, ' +
      'not msg or UDP)',
    spec: { type: 'string' },
  },
  workers: { help: 'threads for --io-model workers or io-uring (default: CPUs)', spec: { type: 'string' } },
  blocking: { help: 'thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
  window: { help: 'SO_SNDBUF and SO_RCVBUF on both ends, e.g. 256K', spec: { type: 'string', short: 'w' } },
  sndbuf: { help: 'SO_SNDBUF on both ends (overrides -w)', spec: { type: 'string' } },
  rcvbuf: { help: 'SO_RCVBUF on both ends (overrides -w)', spec: { type: 'string' } },
  'no-delay': { help: 'TCP_NODELAY on both ends (the default)', spec: { type: 'boolean' } },
  nagle: { help: 'leave Nagle on: no TCP_NODELAY', spec: { type: 'boolean' } },
  ...COMMON_OUTPUT_FLAGS,
};

/** What a flag's value is, by flag name: the unit or the kind, never a bare <value>. */
const PLACEHOLDERS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries({
    '<seconds>': 'time omit interval hold idle-timeout max-duration open-timeout test-idle-timeout time-skew-threshold duration-per-trial',
    '<duration>': 'budget',
    '<bytes>': 'length size window sndbuf rcvbuf max-buffered max-chunk max-socket-buffer response-size bytes',
    '<n>':
      'connections parallel concurrency target workers repeat depth max-tests max-per-client ' +
      'max-per-ip max-connections max-connections-per-test max-handshakes max-threads ' +
      'min-threads max-threads-per-test max-threads-per-client max-streams max-total-streams max-streams-per-client max-barrier-clients ' +
      'client-threads',
    '<host>': 'client',
    '<port>': 'port cport',
    '<address>': 'bind',
    '<addresses>': 'source-ips',
    '<path>': 'unix',
    '<file>': 'report payload rsa-private-key-path authorized-users-path',
    '<bits/s>': 'max-rate bitrate',
    '<unit>': 'format',
    '<requests/s>': 'rate',
    '<cpus>': 'affinity',
    '<secret>': 'auth-token',
    '<model>': 'io-model',
    '<auto|n>': 'batch',
    '<objective>': 'objective',
    '<workload>': 'workload',
    '<unix-ms>': 'start-at',
  }).flatMap(([placeholder, names]) => names.split(' ').map((name) => [name, placeholder])),
);

/** The placeholder a flag's help shows: its own, else the shared one for its name. */
export function placeholderOf(name: string, flag: Command['flags'][string]): string | undefined {
  if (flag.spec.type !== 'string') return undefined;
  return flag.value ?? PLACEHOLDERS[name] ?? '<value>';
}

function flagLine([name, flag]: [string, Command['flags'][string]]): string {
  const { spec } = flag;
  const help = flag.default === undefined ? flag.help : `${flag.help} (default ${flag.default})`;
  const short = spec.short ? `-${spec.short}, ` : '    ';
  const placeholder = placeholderOf(name, flag);
  const value = placeholder === undefined ? '' : ` ${placeholder}`;
  return `${`  ${short}--${name}${value}`.padEnd(30)}  ${help}`;
}

/** A command's help: its own flags first, then those every client command shares. */
export function renderHelp(command: Command): string {
  const shared = new Set([...Object.values(COMMON_CLIENT_FLAGS), ...Object.values(COMMON_OUTPUT_FLAGS)]);
  const entries = Object.entries(command.flags);
  const own = entries.filter(([, flag]) => !shared.has(flag));
  const common = entries.filter(([, flag]) => shared.has(flag));
  return [
    `socktune ${command.name} — ${command.summary}`,
    '',
    `Usage: ${command.usage}`,
    '',
    'Options:',
    ...own.map(flagLine),
    ...(common.length > 0 ? ['', 'Options every client command takes:', ...common.map(flagLine)] : []),
    '',
    '  -h, --help'.padEnd(32) + 'show this help',
    '      --debug'.padEnd(32) + 'print stack traces on errors',
    ...(command.subcommands ? ['', 'Modes:', ...command.subcommands.map((mode) => `  ${mode.name.padEnd(26)}  ${mode.summary}`)] : []),
    '',
    'Examples:',
    ...command.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}
