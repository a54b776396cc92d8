import { readFileSync } from 'node:fs';
import { LINUX, libc } from './libc.ts';

export interface OpenFilesLimit {
  soft: number;
  hard: number;
}

export function openFilesLimit(): OpenFilesLimit {
  const limits = Buffer.alloc(16);
  libc().getrlimit(LINUX.RLIMIT_NOFILE, limits);
  return { soft: Number(limits.readBigUInt64LE(0)), hard: Number(limits.readBigUInt64LE(8)) };
}

function nrOpen(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/nr_open', 'utf8'));
  } catch {
    return 1_048_576;
  }
}

/**
 * Raises RLIMIT_NOFILE so that `wanted` descriptors fit: the soft limit up to the hard one, and
 * as root the hard one too (up to fs.nr_open). Returns the limit in force afterwards, which may
 * still be below `wanted`; the caller says so.
 */
export function raiseOpenFilesLimit(wanted: number): OpenFilesLimit {
  const current = openFilesLimit();
  if (current.soft >= wanted) return current;
  const isRoot = process.getuid?.() === 0;
  const hard = isRoot ? Math.max(current.hard, Math.min(wanted, nrOpen())) : current.hard;
  const soft = Math.min(wanted, hard);
  const limits = Buffer.alloc(16);
  limits.writeBigUInt64LE(BigInt(soft), 0);
  limits.writeBigUInt64LE(BigInt(hard), 8);
  libc().setrlimit(LINUX.RLIMIT_NOFILE, limits);
  return openFilesLimit();
}
