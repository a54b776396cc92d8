import { SocktuneError } from '../../core/errors.ts';
import { modeWord, type Command } from '../command.ts';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/** The words a command line may continue with: its flags, and for a command with modes, the modes too. */
function wordsOf(command: Command): string {
  const flags = ['--help', ...Object.keys(command.flags).map((name) => `--${name}`)];
  const modes = (command.subcommands ?? []).map(modeWord);
  return [...modes, ...(command.positionalChoices ?? []), ...flags].join(' ');
}

function bash(commands: readonly Command[]): string {
  const cases = commands.map((command) => {
    const modes = command.subcommands ?? [];
    if (modes.length === 0) return `    ${command.name}) words="${wordsOf(command)}" ;;`;
    const modeCases = modes.map((mode) => `        ${modeWord(mode)}) words="${wordsOf(mode)}" ;;`).join('\n');
    return (
      `    ${command.name})\n      case "\${COMP_WORDS[2]}" in\n${modeCases}\n        *) ` + `words="${wordsOf(command)}" ;;\n      esac ;;`
    );
  });
  return `# socktune completion for bash: source <(socktune completion bash)
_socktune() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words
  if [[ \${COMP_CWORD} -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${commands.map((command) => command.name).join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _socktune socktune
`;
}

function zsh(commands: readonly Command[]): string {
  return `# socktune completion for zsh: source <(socktune completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(commands).split('\n').slice(1).join('\n')}`;
}

function fish(commands: readonly Command[]): string {
  const quote = (text: string): string => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const lines = ['# socktune completion for fish: socktune completion fish | source', 'complete -c socktune -f'];
  for (const command of commands) {
    lines.push(`complete -c socktune -n __fish_use_subcommand -a ${command.name} -d ${quote(command.summary)}`);
    const flagLines = (word: string, flags: Command['flags']): string[] =>
      Object.entries(flags).map(([name, flag]) => {
        const short = flag.spec.short === undefined ? '' : ` -s ${flag.spec.short}`;
        const takesValue = flag.spec.type === 'string' ? ' -r' : '';
        return `complete -c socktune -n '__fish_seen_subcommand_from ${word}' -l ${name}${short}${takesValue} -d ${quote(flag.help)}`;
      });
    lines.push(...flagLines(command.name, command.flags));
    for (const mode of command.subcommands ?? []) {
      const word = modeWord(mode);
      lines.push(`complete -c socktune -n '__fish_seen_subcommand_from ${command.name}' -a ${word} -d ${quote(mode.summary)}`);
      lines.push(...flagLines(word, mode.flags));
    }
  }
  return `${lines.join('\n')}\n`;
}

const RENDER: Readonly<Record<Shell, (commands: readonly Command[]) => string>> = { bash, zsh, fish };

/** `socktune completion SHELL`: commands, modes and flags, generated from the same definitions as --help. */
export function completionCommand(commands: () => readonly Command[]): Command {
  return {
    name: 'completion',
    summary: 'print a shell completion script for bash, zsh or fish',
    usage: 'socktune completion bash|zsh|fish',
    positionals: 'SHELL',
    positionalChoices: SHELLS,
    flags: {},
    examples: [
      'source <(socktune completion bash)    # in ~/.bashrc',
      'source <(socktune completion zsh)    # in ~/.zshrc',
      'socktune completion fish > ~/.config/fish/completions/socktune.fish',
    ],
    run(_values, io, positionals) {
      const [shell, ...extra] = positionals;
      if (shell === undefined || extra.length > 0 || !(SHELLS as readonly string[]).includes(shell)) {
        throw new SocktuneError('SOCKTUNE_ERR_USAGE', `socktune completion takes one shell: ${SHELLS.join(', ')}`);
      }
      io.out(RENDER[shell as Shell](commands()).trimEnd());
      return Promise.resolve(0);
    },
  };
}
