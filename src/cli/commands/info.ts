import { collectEnvironment } from '../../bench/results/environment.ts';
import { RESULT_SCHEMA } from '../../bench/results/result.ts';
import { COMMON_OUTPUT_FLAGS, type Command } from '../command.ts';

export const infoCommand: Command = {
  name: 'info',
  summary: 'the facts a bug report needs: Node, kernel, CPUs, socket buffer sysctls, limits',
  usage: 'socktune info [--json]',
  flags: { json: COMMON_OUTPUT_FLAGS.json! },
  examples: ['socktune info', 'socktune info --json > env.json'],
  run(values, io) {
    const environment = collectEnvironment();
    if (values.json) {
      io.out(JSON.stringify({ schema: RESULT_SCHEMA, command: 'info', environment }, null, 2));
      return Promise.resolve(0);
    }
    const lines = [
      `node        ${environment.node}`,
      `platform    ${environment.platform}, kernel ${environment.kernel}`,
      `cpus        ${environment.cpus} × ${environment.cpuModel}`,
      `open files  ${environment.limits.openFiles}`,
      ...Object.entries(environment.sysctl).map(([name, value]) => `${name.padEnd(32)} ${value}`),
    ];
    io.out(lines.join('\n'));
    return Promise.resolve(0);
  },
};
