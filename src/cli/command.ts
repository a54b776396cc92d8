import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** Where a command writes: stdout for results, stderr for progress and warnings. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTty: boolean;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Flag name → [description, spec]. */
  flags: Record<string, { help: string; spec: OptionSpec[string] }>;
  examples: string[];
  /** What the arguments after the flags are, for commands that take any (`socktune merge a.json b.json`). */
  positionals?: string;
  /** Modes chosen by the first argument (`socktune server iperf3`) or by the older flag (`--iperf3`, `--service NAME`). */
  subcommands?: readonly Command[];
  /** Flags this command refuses with a reason worth more than "unknown option": the security flags above all. */
  refusals?: Readonly<Record<string, string>>;
  run(values: Values, io: Io, positionals: string[]): Promise<number>;
}

export const COMMON_OUTPUT_FLAGS: Command['flags'] = {
  json: { help: 'print one JSON document (schema socktune/1) at the end', spec: { type: 'boolean' } },
  quiet: { help: 'print only the summary', spec: { type: 'boolean', short: 'q' } },
};

export const COMMON_CLIENT_FLAGS: Command['flags'] = {
  client: { help: 'host of the socktune server (with --raw: HOST:PORT of any service)', spec: { type: 'string', short: 'c' } },
  raw: { help: 'drive any TCP service directly: no socktune server, client-side numbers only', spec: { type: 'boolean' } },
  repeat: { help: 'run N times; report the median run and the spread', spec: { type: 'string' } },
  port: { help: 'control port of the server (default 5210)', spec: { type: 'string', short: 'p' } },
  unix: { help: 'Unix-domain control socket of the server instead of -c/-p', spec: { type: 'string' } },
  time: { help: 'seconds to measure (default 10)', spec: { type: 'string', short: 't' } },
  omit: { help: 'warm-up seconds left out of the summary (default 0)', spec: { type: 'string' } },
  interval: { help: 'seconds between progress lines (default 1)', spec: { type: 'string', short: 'i' } },
  ndjson: { help: 'print one JSON line per interval, then the final document', spec: { type: 'boolean' } },
  'auth-token': {
    help: 'shared secret of a server started with --auth-token (better: SOCKTUNE_AUTH_TOKEN, which stays out of ps)',
    spec: { type: 'string' },
  },
  affinity: {
    help: "pin this client to CPUs N, and the test's server threads to M (workers, thread-per-conn), as iperf3 -A: N or N,M, each a CPU or a range (0-1)",
    spec: { type: 'string', short: 'A' },
  },
  'start-at': {
    help: 'wait until this wall-clock time (Unix milliseconds, `date +%s%3N`) so runs on several hosts start together; see socktune merge',
    spec: { type: 'string' },
  },
  'io-model': { help: 'server I/O model: loop, workers, thread-per-conn (default loop)', spec: { type: 'string' } },
  workers: { help: 'threads for --io-model workers (default: CPUs)', spec: { type: 'string' } },
  blocking: { help: 'thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
  window: { help: 'SO_SNDBUF and SO_RCVBUF on both ends, e.g. 256K', spec: { type: 'string', short: 'w' } },
  sndbuf: { help: 'SO_SNDBUF on both ends (overrides -w)', spec: { type: 'string' } },
  rcvbuf: { help: 'SO_RCVBUF on both ends (overrides -w)', spec: { type: 'string' } },
  'no-delay': { help: 'TCP_NODELAY on both ends (the default)', spec: { type: 'boolean' } },
  nagle: { help: 'leave Nagle on: no TCP_NODELAY', spec: { type: 'boolean' } },
  ...COMMON_OUTPUT_FLAGS,
};

export function renderHelp(command: Command): string {
  const flagLines = Object.entries(command.flags).map(([name, { help, spec }]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'string' ? ' <value>' : '';
    return `${`  ${short}--${name}${value}`.padEnd(30)}  ${help}`;
  });
  return [
    `socktune ${command.name} — ${command.summary}`,
    '',
    `Usage: ${command.usage}`,
    '',
    'Options:',
    ...flagLines,
    '  -h, --help'.padEnd(32) + 'show this help',
    '      --debug'.padEnd(32) + 'print stack traces on errors',
    ...(command.subcommands ? ['', 'Modes:', ...command.subcommands.map((mode) => `  ${mode.name.padEnd(26)}  ${mode.summary}`)] : []),
    '',
    'Examples:',
    ...command.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}
