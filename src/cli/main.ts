import { packageVersion } from './version.ts';
import { createWriteStream, openSync } from 'node:fs';
import { LineWriter } from './output.ts';
import { pinAddressFamily } from './client-settings.ts';
import { applyHostPick } from './host-pick.ts';
import { SocktuneError, type ErrorCode } from '../core/errors.ts';
import { closest, parseCommandArgs, selectMode } from './arguments.ts';
import { renderHelp, type Command, type Io } from './command.ts';
import { completionCommand } from './commands/completion.ts';
import { connsCommand } from './commands/conns.ts';
import { crrCommand } from './commands/crr.ts';
import { infoCommand } from './commands/info.ts';
import { k8sCommand } from './commands/k8s.ts';
import { mergeCommand } from './commands/merge.ts';
import { msgCommand } from './commands/msg.ts';
import { rrCommand } from './commands/rr.ts';
import { serverCommand } from './commands/server/index.ts';
import { streamCommand } from './commands/stream.ts';
import { tuneCommand } from './commands/tune.ts';

const COMMANDS: readonly Command[] = [
  tuneCommand,
  serverCommand,
  streamCommand,
  rrCommand,
  crrCommand,
  connsCommand,
  msgCommand,
  mergeCommand,
  k8sCommand,
  infoCommand,
  completionCommand(() => COMMANDS),
];

/** Every command and mode: a flag given to the wrong one is pointed to where it belongs. */
const FAMILY: readonly Command[] = COMMANDS.flatMap((command) => [command, ...(command.subcommands ?? [])]);

/** Exit status by error code (docs/errors.md); 1 for anything else. */
const EXIT_STATUS: Partial<Record<ErrorCode, number>> = {
  SOCKTUNE_ERR_USAGE: 2,
  SOCKTUNE_ERR_MERGE: 2,
  SOCKTUNE_ERR_AUTH: 3,
  SOCKTUNE_ERR_INVALID_OPTION: 2,
  SOCKTUNE_ERR_REFUSED: 3,
  SOCKTUNE_ERR_RESOLVE: 3,
  SOCKTUNE_ERR_TIMEOUT: 3,
  SOCKTUNE_ERR_PEER_GONE: 3,
  SOCKTUNE_ERR_PROTOCOL: 3,
  SOCKTUNE_ERR_FRAME_TOO_LARGE: 3,
  SOCKTUNE_ERR_SLOW_CONSUMER: 3,
};

/** The longest command name and two spaces. */
const NAME_WIDTH = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;

function topLevelHelp(): string {
  return [
    'socktune — fast TCP on Node.js: measure, then choose.',
    '',
    'Usage: socktune <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(NAME_WIDTH)}${command.summary}`),
    '',
    'Run `socktune <command> --help` for its options and examples.',
    'Quick start: npx socktune tune --quick',
    '',
  ].join('\n');
}

/** --logfile FILE: everything the command prints, appended to FILE (opened now, so a bad path is a usage error). */
function logfileIo(path: string): Io {
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (error) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--logfile ${path}: ${(error as NodeJS.ErrnoException).code ?? 'cannot open it'}`);
  }
  const file = new LineWriter(createWriteStream(path, { fd }));
  return { out: (text) => file.write(text), err: (text) => file.write(text), isTty: false, columns: undefined };
}

const stdout = new LineWriter(process.stdout);
const stderr = new LineWriter(process.stderr);

/** The width output is cut to: COLUMNS when set (as `COLUMNS=100 socktune tune …`), else the terminal's; none when piped. */
function terminalColumns(): number | undefined {
  const fromEnvironment = Number(process.env.COLUMNS);
  if (Number.isInteger(fromEnvironment) && fromEnvironment > 0) return fromEnvironment;
  return process.stdout.isTTY ? process.stdout.columns : undefined;
}

const defaultIo: Io = {
  out: (text) => stdout.write(text),
  err: (text) => stderr.write(text),
  isTty: process.stderr.isTTY === true,
  columns: terminalColumns(),
};

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  const debug = rest.includes('--debug');
  try {
    // `socktune help stream` is `socktune stream --help`, as git and npm read it.
    if (name === 'help' && rest[0] !== undefined && !rest[0].startsWith('-')) return await main([...rest, '--help'], io);
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.out(topLevelHelp());
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-v') {
      io.out(packageVersion());
      return 0;
    }
    const found = COMMANDS.find((candidate) => candidate.name === name);
    if (!found) {
      const guess = closest(
        name,
        COMMANDS.map((c) => c.name),
      );
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `unknown command ${JSON.stringify(name)}${guess === undefined ? '' : `; did you mean ${guess}?`} ` +
          `(commands: ${COMMANDS.map((c) => c.name).join(', ')})`,
      );
    }
    const { command, args } = selectMode(found, rest);
    const { values, positionals } = parseCommandArgs(command, args, FAMILY);
    if (values.help) {
      io.out(renderHelp(command));
      return 0;
    }
    applyHostPick(values);
    await pinAddressFamily(values);
    return await command.run(values, typeof values.logfile === 'string' ? logfileIo(values.logfile) : io, positionals);
  } catch (error) {
    if (error instanceof SocktuneError) {
      io.err(`socktune: ${error.code}: ${error.message}`);
      if (debug && error.stack) io.err(error.stack);
      return EXIT_STATUS[error.code] ?? 1;
    }
    io.err(`socktune: unexpected error: ${(error as Error).message ?? String(error)}`);
    if (debug) io.err(String((error as Error).stack));
    return 1;
  }
}
