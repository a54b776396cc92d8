import type { Command } from '../../command.ts';
import { controlServerCommand } from './control.ts';
import { iperf3ServerCommand } from './iperf3.ts';
import { serviceServerCommand } from './service.ts';
import { sockperfServerCommand } from './sockperf.ts';

/** `socktune server`: the control server, and the modes that answer other tools' clients or serve a bare port. */
export const serverCommand: Command = {
  ...controlServerCommand,
  subcommands: [iperf3ServerCommand, sockperfServerCommand, serviceServerCommand],
};
