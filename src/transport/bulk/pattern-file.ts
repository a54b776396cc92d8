import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATTERN_PERIOD, patternBytes } from '../services/pattern.ts';

/** Large enough that most sends are whole chunks, small enough to stay in the page cache on any host. */
const MIN_FILE_BYTES = 1024 * 1024;

export interface PatternFile {
  /** A read-only descriptor of the file, for sendfile. */
  readonly fd: number;
  /** A whole number of pattern periods: a sender that wraps to offset 0 at the end keeps the pattern unbroken. */
  readonly bytes: number;
  close(): void;
}

/**
 * The pattern the `source` service sends and `--verify` checks, as a file for sendfile to send from
 * the page cache. The file is removed as soon as it is open: nothing is left behind, whatever
 * happens to this process.
 */
export function openPatternFile(chunkBytes: number): PatternFile {
  const bytes = Math.ceil(Math.max(MIN_FILE_BYTES, 2 * chunkBytes) / PATTERN_PERIOD) * PATTERN_PERIOD;
  const directory = mkdtempSync(join(tmpdir(), 'socktune-zerocopy-'));
  try {
    const path = join(directory, 'pattern');
    writeFileSync(path, patternBytes(bytes), { mode: 0o600 });
    const fd = openSync(path, 'r');
    return { fd, bytes, close: () => closeSync(fd) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
