/**
 * The stock sockperf client as the benchmarks run it: TCP, 64-byte messages, against a server on
 * 127.0.0.1; and the figures they read from its output.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** `sockperf pp|tp --tcp -m 64` for `seconds`: its whole output (it prints its figures on both streams). */
export async function runSockperf(mode: 'pp' | 'tp', port: number, seconds: number): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)('sockperf', [
    mode,
    '--tcp',
    '-i',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    String(seconds),
    '-m',
    '64',
  ]);
  return `${stdout}\n${stderr}`;
}

/** A `pp` percentile as sockperf reports it: half a round trip, in µs ('50.000', '99.000', …). */
export function sockperfPercentile(output: string, percentile: string): number | undefined {
  const match = new RegExp(`percentile ${percentile.replace('.', '\\.')} =\\s+([\\d.]+)`).exec(output);
  return match ? Number(match[1]) : undefined;
}

/** A `tp` run's messages per second. */
export function sockperfMessageRate(output: string): number | undefined {
  const match = /Message Rate is ([\d.]+) \[msg\/sec\]/.exec(output);
  return match ? Number(match[1]) : undefined;
}
