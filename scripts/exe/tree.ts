/**
 * The files the single executable carries as SEA assets and unpacks once per content hash: a small
 * installed package (package.json, dist/ bundles, docs/schema, node_modules/koffi with its native
 * module). Used at run time by the launcher and, through the build's `import.meta.url` rewrite, by
 * every bundled module that finds files next to itself: worker threads and child processes of the
 * executable locate the same directory the same way, from the same manifest.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { getAsset, getRawAsset } from 'node:sea';
import { pathToFileURL } from 'node:url';

/** The asset that lists the others; every other asset's key is its path in the tree. */
export const MANIFEST_ASSET = 'socktune-exe-manifest.json';

/** Overrides where the tree is unpacked (a directory the user owns); the tests use it for a fresh cache. */
export const CACHE_ENV = 'SOCKTUNE_EXE_CACHE';

export interface TreeManifest {
  /** sha256 of the tree (paths and contents), shortened: the directory's name, so a new build never reuses an old tree. */
  hash: string;
  /** Paths relative to the tree's root, with forward slashes. */
  files: string[];
}

let root: string | undefined;

/** The unpacked tree's directory, ending in a separator; unpacks it on first use. */
export function treeRoot(): string {
  if (root !== undefined) return root;
  const manifest = JSON.parse(getAsset(MANIFEST_ASSET, 'utf8')) as TreeManifest;
  const failures: string[] = [];
  for (const base of cacheBases()) {
    try {
      root = unpack(base, manifest) + sep;
      return root;
    } catch (error) {
      failures.push(`${base}: ${(error as Error).message}`);
    }
  }
  throw new Error(`cannot unpack its runtime files (${failures.join('; ')}); set ${CACHE_ENV} to a directory of yours`);
}

/** What a bundled module's `import.meta.url` would be in an installed package: the file's URL in the tree. */
export function moduleUrl(pathInTree: string): string {
  return pathToFileURL(treeRoot() + pathInTree).href;
}

/** Per-user cache directories, best first; the temporary directory's is named after the user, and checked to be theirs. */
function cacheBases(): string[] {
  const override = process.env[CACHE_ENV];
  // Absolute, so worker threads and child processes started elsewhere find the same directory.
  if (override) return [resolve(override)];
  const bases: string[] = [];
  const xdg = process.env.XDG_CACHE_HOME;
  // The XDG spec says a relative path is invalid and to be ignored.
  if (xdg && isAbsolute(xdg)) bases.push(join(xdg, 'socktune'));
  const home = homedir();
  if (home) bases.push(join(home, '.cache', 'socktune'));
  bases.push(join(tmpdir(), `socktune-${process.getuid?.() ?? 'user'}`));
  return bases;
}

/** The tree's directory under `base`, written first into a staging directory renamed into place, so no reader sees half a tree. */
function unpack(base: string, manifest: TreeManifest): string {
  const directory = join(base, `exe-${manifest.hash}`);
  if (existsSync(directory)) {
    assertOwnDirectory(directory);
    return directory;
  }
  mkdirSync(base, { recursive: true, mode: 0o700 });
  assertOwnDirectory(base);
  const staging = mkdtempSync(join(base, `.exe-${manifest.hash}-`));
  try {
    for (const file of manifest.files) {
      const target = join(staging, ...file.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, new Uint8Array(getRawAsset(file)), { mode: 0o644 });
    }
    renameSync(staging, directory);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another socktune unpacked the same tree meanwhile: rename(2) does not replace a non-empty directory.
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(directory)) {
      assertOwnDirectory(directory);
      return directory;
    }
    throw error;
  }
  return directory;
}

/**
 * The tree holds code this process runs (and a shared library it maps), so a directory someone
 * else owns or can write to is refused, not used: in a shared /tmp another user may have made it first.
 */
function assertOwnDirectory(directory: string): void {
  const stats = lstatSync(directory);
  if (!stats.isDirectory()) throw new Error(`${directory} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) throw new Error(`${directory} belongs to user ${stats.uid}, not ${uid}`);
  if ((stats.mode & 0o022) !== 0) throw new Error(`${directory} is writable by others (mode ${(stats.mode & 0o777).toString(8)})`);
}
