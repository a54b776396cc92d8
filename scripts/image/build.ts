/**
 * Builds a container image of socktune FROM scratch, offline, with buildah: the single executable
 * (npm run build:exe), the shared libraries it and koffi's native module load (read from ldd), an
 * /etc/passwd with the non-root user 65532 the Kubernetes pods run as, and `socktune` as the
 * entrypoint. Nothing is pulled: there is no base image.
 *
 *   npm run build:image [-- --exe dist-exe/socktune] [--tag localhost/socktune:VERSION]
 *
 * The layout:
 *   /usr/local/bin/socktune        the executable, the entrypoint
 *   /lib..., /lib64/...            the libraries at the paths ldd names (the loader's own among them)
 *   /etc/passwd, /etc/group        root, and nonroot (65532:65532, home /home/nonroot)
 *   /etc/nsswitch.conf             hosts from /etc/hosts, then DNS: a Service name resolves in a pod
 *   /tmp (1777), /home/nonroot     where the executable unpacks its runtime files (tree.ts); under a
 *                                  read-only root file system the pods mount an emptyDir on /tmp
 * Needs root (buildah mount), as CI runs; `apt-get install buildah` on Debian.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const REPO = resolve(import.meta.dirname, '..', '..');
const USER = 65532;
const ENTRYPOINT = '/usr/local/bin/socktune';

function options(): { exe: string; tag: string } {
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const { values } = parseArgs({
    options: {
      exe: { type: 'string', default: join(REPO, 'dist-exe', 'socktune') },
      tag: { type: 'string', default: `localhost/socktune:${version}` },
    },
  });
  return { exe: resolve(values.exe), tag: values.tag };
}

function buildah(args: string[]): string {
  return execFileSync('buildah', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The libraries ldd says `file` loads, by the path the loader finds them at (the loader itself included). */
function sharedLibraries(file: string): string[] {
  const output = execFileSync('ldd', [file], { encoding: 'utf8' });
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(0x/.exec(line)?.[1];
    if (line.includes('not found')) throw new Error(`${file}: ${line.trim()}`);
    if (path !== undefined) paths.push(path);
  }
  return paths;
}

/** Every .node module under `directory`. */
function nativeModules(directory: string): string[] {
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.node'))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The executable's libraries and its unpacked native modules' (koffi.node), found by running it once. */
function librariesOf(exe: string, scratch: string): string[] {
  const cache = join(scratch, 'unpacked');
  execFileSync(exe, ['--version'], { env: { PATH: '/nonexistent', SOCKTUNE_EXE_CACHE: cache }, stdio: 'ignore' });
  const modules = nativeModules(cache);
  if (modules.length === 0) throw new Error(`${exe} unpacked no native module: is it socktune's single executable?`);
  return [...new Set([exe, ...modules].flatMap(sharedLibraries))].sort();
}

/** The image's files, written into `root` (a mounted, empty container file system). */
function populate(root: string, exe: string, libraries: string[]): void {
  const place = (path: string): string => {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    return target;
  };
  copyFileSync(exe, place(ENTRYPOINT));
  chmodSync(join(root, ENTRYPOINT), 0o755);
  // The file itself at the path the loader asks for (cp -L): a symlink would point at nothing in the image.
  for (const library of libraries) {
    const target = place(library);
    copyFileSync(library, target);
    chmodSync(target, 0o755);
  }
  const etc = (name: string, text: string): void => {
    const target = place(join('etc', name));
    writeFileSync(target, text);
    chmodSync(target, 0o644);
  };
  etc('passwd', `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${USER}:${USER}:nonroot:/home/nonroot:/sbin/nologin\n`);
  etc('group', `root:x:0:\nnonroot:x:${USER}:\n`);
  etc('nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, 'home', 'nonroot'), { recursive: true });
  chmodSync(join(root, 'home', 'nonroot'), 0o700);
  chownSync(join(root, 'home', 'nonroot'), USER, USER);
}

function main(): void {
  const { exe, tag } = options();
  if (!existsSync(exe)) throw new Error(`${exe} does not exist: run npm run build:exe first (or give --exe)`);
  const scratch = mkdtempSync(join(tmpdir(), 'socktune-image-'));
  const container = buildah(['from', '--quiet', 'scratch']);
  try {
    const libraries = librariesOf(exe, scratch);
    const root = buildah(['mount', container]);
    try {
      populate(root, exe, libraries);
    } finally {
      buildah(['umount', container]);
    }
    const version = tag.split(':').at(-1) ?? 'latest';
    buildah([
      'config',
      '--entrypoint',
      JSON.stringify([ENTRYPOINT]),
      '--cmd',
      JSON.stringify(['--help']),
      '--user',
      `${USER}:${USER}`,
      '--env',
      'HOME=/home/nonroot',
      '--workingdir',
      '/home/nonroot',
      '--label',
      'org.opencontainers.image.title=socktune',
      '--label',
      `org.opencontainers.image.version=${version}`,
      '--label',
      'org.opencontainers.image.source=https://github.com/socktune/socktune',
      container,
    ]);
    const id = buildah(['commit', '--quiet', '--rm', container, tag]);
    process.stdout.write(`${tag} ${id.slice(0, 12)}: ${ENTRYPOINT} and ${libraries.length} libraries (${libraries.join(', ')})\n`);
  } catch (error) {
    buildah(['rm', container]);
    throw error;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main();
