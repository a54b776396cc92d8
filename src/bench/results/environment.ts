import { readFileSync } from 'node:fs';
import { cpus, release, type as osType } from 'node:os';

/** What a user pastes into a bug report, and what every JSON result carries. */
export interface Environment {
  node: string;
  platform: string;
  kernel: string;
  cpus: number;
  /** The CPUs this process may run on (Cpus_allowed_list): pinned with -A, or all of them. */
  cpuAffinity: string;
  cpuModel: string;
  sysctl: Record<string, string>;
  limits: { openFiles: string };
}

const SYSCTLS = [
  'net.core.rmem_max',
  'net.core.wmem_max',
  'net.core.rmem_default',
  'net.core.wmem_default',
  'net.core.somaxconn',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_congestion_control',
  'net.ipv4.ip_local_port_range',
] as const;

function readSysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8')
      .trim()
      .replace(/\s+/g, ' ');
  } catch {
    return 'unavailable';
  }
}

function openFilesLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((row) => row.startsWith('Max open files'));
    const [soft, hard] = line?.replace('Max open files', '').trim().split(/\s+/) ?? [];
    return soft && hard ? `${soft} (hard ${hard})` : 'unavailable';
  } catch {
    return 'unavailable';
  }
}

function affinityOfThisProcess(): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unavailable';
  } catch {
    return 'unavailable';
  }
}

export function collectEnvironment(): Environment {
  return {
    node: process.version,
    platform: `${osType()} ${process.arch}`,
    kernel: release(),
    // The machine's CPUs: a process pinned with -A still runs on a machine of that many (cpuAffinity says which it may use).
    cpus: cpus().length,
    cpuAffinity: affinityOfThisProcess(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    sysctl: Object.fromEntries(SYSCTLS.map((name) => [name, readSysctl(name)])),
    limits: { openFiles: openFilesLimit() },
  };
}
