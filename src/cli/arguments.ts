import { parseArgs } from 'node:util';
import { SocktuneError } from '../core/errors.ts';
import { IPERF3_HABITS, modeWord as word, placeholderOf, type Command, type OptionSpec, type Values } from './command.ts';

/**
 * The mode of a command with subcommands: named first (`server iperf3`), or by its older flag (`server --iperf3`, `server --service
 * echo`).
 */
export function selectMode(command: Command, args: readonly string[]): { command: Command; args: string[] } {
  const modes = command.subcommands ?? [];
  const named = modes.find((mode) => word(mode) === args[0]);
  if (named) return { command: named, args: args.slice(1) };
  let chosen: Command | undefined;
  const aliases: string[] = [];
  const [flags, afterFlags] = endOfFlags(args);
  const rest: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i]!;
    const [flag, inline] = splitInline(arg);
    const mode = modes.find((candidate) => flag === `--${word(candidate)}`);
    if (!mode) {
      rest.push(arg);
      continue;
    }
    aliases.push(flag);
    chosen = mode;
    if (mode.positionals === undefined) continue;
    const value = inline ?? flags[++i];
    if (value === undefined || value.startsWith('-'))
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} needs a ${mode.positionals} (see socktune ${mode.name} --help)`);
    positionals.push(value);
  }
  if (aliases.length > 1) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `choose one of ${modes
        .map((mode) => `--${word(mode)}`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' and $1')}, not ${aliases.join(' and ')}`,
    );
  }
  return chosen ? { command: chosen, args: [...positionals, ...rest, ...afterFlags] } : { command, args: [...args] };
}

/** The arguments before `--`, and `--` with what follows it (only positionals there). */
function endOfFlags(args: readonly string[]): [readonly string[], readonly string[]] {
  const end = args.indexOf('--');
  return end < 0 ? [args, []] : [args.slice(0, end), args.slice(end)];
}

function splitInline(arg: string): [string, string | undefined] {
  const equals = arg.indexOf('=');
  return arg.startsWith('--') && equals > 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
}

/**
 * Parses a command's flags with socktune's own messages: a refused flag says why, a flag of a sibling
 * mode says where it belongs, a typo gets "did you mean", and a negative number reaches the flag's own
 * check instead of Node's "argument is ambiguous".
 */
export function parseCommandArgs(
  command: Command,
  args: readonly string[],
  family: readonly Command[],
): { values: Values; positionals: string[] } {
  const options: OptionSpec = { help: { type: 'boolean', short: 'h' }, debug: { type: 'boolean' } };
  for (const [flag, { spec }] of Object.entries(command.flags)) options[flag] = spec;
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(args, options),
      options,
      strict: true,
      allowPositionals: command.positionals !== undefined,
    });
    return parsed as { values: Values; positionals: string[] };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined) throw unknownFlag(command, unknown, family);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const extra = /'([^']*)'/.exec(message)?.[1] ?? '';
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `socktune ${command.name} takes no argument ${JSON.stringify(extra)}; flags start with -- (see socktune ${command.name} --help)`,
      );
    }
    // Node says <value>; the help says what the value is (<host>, <seconds>…): the error says it the same way.
    const said = message.replace(/'(?:-(\w), )?--([\w-]+) <value>'/, (whole, _short: string | undefined, name: string) => {
      const flag = command.flags[name];
      const placeholder = flag === undefined ? undefined : placeholderOf(name, flag);
      return placeholder === undefined ? whole : whole.replace('<value>', placeholder);
    });
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${said} (see socktune ${command.name} --help)`);
  }
}

/** `--size -5` becomes `--size=-5`, so that the flag's own check answers. */
function joinNegativeValues(args: readonly string[], options: OptionSpec): string[] {
  const byShort = new Map(Object.entries(options).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));
  const [flags, afterFlags] = endOfFlags(args);
  const joined: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i]!;
    const name = arg.startsWith('--') ? arg.slice(2) : /^-[^-]$/.test(arg) ? byShort.get(arg.slice(1)) : undefined;
    const next = flags[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return [...joined, ...afterFlags];
}

function unknownFlag(command: Command, flag: string, family: readonly Command[]): SocktuneError {
  const name = flag.replace(/^-+/, '');
  const help = `see socktune ${command.name} --help`;
  const why = command.refusals?.[name];
  if (why !== undefined) return new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} does nothing for socktune ${command.name}: ${why}`);
  const habit = 'client' in command.flags ? IPERF3_HABITS[name] : undefined;
  if (habit !== undefined) return new SocktuneError('SOCKTUNE_ERR_USAGE', `socktune ${command.name} takes no ${flag}: ${habit} (${help})`);
  const root = (other: Command): string => other.name.split(' ')[0]!;
  const elsewhere = family.filter((other) => other !== command && name in other.flags);
  const near = elsewhere.filter((other) => root(other) === root(command));
  const owners = (near.length > 0 ? near : elsewhere).map((other) => `socktune ${other.name}`);
  if (flag.startsWith('--') && owners.length > 0) {
    return new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `${flag} is not a flag of socktune ${command.name}; it belongs to ${owners.join(', ')} (${help})`,
    );
  }
  const guess = flag.startsWith('--') ? closest(name, Object.keys(command.flags)) : undefined;
  return new SocktuneError(
    'SOCKTUNE_ERR_USAGE',
    `unknown option ${flag}${guess === undefined ? '' : `; did you mean --${guess}?`} (${help})`,
  );
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be the likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  const tolerance = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= tolerance || (best !== undefined && best.startsWith(word) && word.length >= 3) ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = distance;
    }
  }
  return rows[a.length]![b.length]!;
}
