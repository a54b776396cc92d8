import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { runProcess, type ProcessRun } from './helpers.ts';
import { main } from '../src/cli/main.ts';

export const BIN = new URL('../bin/socktune.js', import.meta.url).pathname;

export type CliRun = ProcessRun;

/** Runs the real CLI binary to completion, killed if it outlives `timeoutMs`. */
export function runCli(args: string[], timeoutMs = 60_000, cwd?: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runProcess(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    timeoutMs,
    label: `socktune ${args.join(' ')}`,
  });
}

/**
 * The CLI's main() in this process, with its output captured: for the many cases that check what a
 * command makes of its input, where starting a process each time would cost more than the check.
 * The binary itself is run by runCli in the same files.
 */
export async function runInProcess(args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (text) => (stdout += `${text}\n`), err: (text) => (stderr += `${text}\n`), isTty: false });
  return { code, stdout, stderr };
}

export interface RunningServer {
  port: number;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<number | null>;
}

/** Where a server's port is announced: the human line, or the --json 'listening' event. */
function announcedPort(stdout: string): number | undefined {
  const human = /listening on \S*:(\d+)\s/.exec(stdout);
  if (human) return Number(human[1]);
  const event = /^\{.*"event":"listening".*\}$/m.exec(stdout);
  return event ? (JSON.parse(event[0]) as { address: { port: number } }).address.port : undefined;
}

/**
 * `socktune server -p 0 ...extra`, resolved once it says where it listens. `launch` starts the
 * process (elsewhere, e.g. inside a network namespace); by default a child of this process.
 */
export function startServer(
  extra: string[] = [],
  launch: (args: string[]) => ChildProcess = (args) => spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }),
): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = launch([BIN, 'server', '-p', '0', ...extra]);
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${stderr}`));
    }, 15_000);
    let announced = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const port = announcedPort(stdout);
      if (port === undefined || announced) return;
      announced = true;
      clearTimeout(timer);
      resolve({
        port,
        child,
        stdout: () => stdout,
        stderr: () => stderr,
        stop: () =>
          new Promise((done) => {
            // Killed by a signal, it has no exit code, and its exit event has passed.
            if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode);
            const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
            child.once('exit', (code) => {
              clearTimeout(kill);
              done(code);
            });
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/** Waits (bounded) until a `--json` server has printed `count` events of a kind; returns those it has. */
export async function waitForServerEvents<Event>(
  server: RunningServer,
  event: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Event[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = serverEvents<Event>(server, event);
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The parts of a merged rr document the tests check. */
export interface MergedRr {
  summary: { requests: number; sentRequests: number; latency: { count: number } };
  intervals: { runs: number }[];
}

/** Writes each run's `--json` output to `dir/<name>.json`, merges the files with the real CLI and returns the schema-checked document. */
export async function mergeRuns(runs: CliRun[], names: string[], dir: string): Promise<MergedRr> {
  const files = runs.map((run, index) => {
    if (run.code !== 0) throw new Error(`run ${names[index]} failed: ${run.stderr}`);
    const file = join(dir, `${names[index]}.json`);
    writeFileSync(file, run.stdout);
    return file;
  });
  const merged = await runCli(['merge', ...files, '--json']);
  if (merged.code !== 0) throw new Error(`merge failed: ${merged.stderr}`);
  const document = JSON.parse(merged.stdout) as MergedRr;
  assertSchema(document);
  return document;
}

/** The JSON lines a `--json` server printed for one event kind. */
export function serverEvents<Event>(server: RunningServer, event: string): Event[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Event & { event: string })
    .filter((entry) => entry.event === event);
}

let validator: ValidateFunction | undefined;

/** Validates a document against docs/schema/socktune-1.schema.json; throws with the errors. */
export function assertSchema(document: unknown): void {
  if (!validator) {
    const schema = JSON.parse(readFileSync(new URL('../docs/schema/socktune-1.schema.json', import.meta.url), 'utf8')) as object;
    validator = new Ajv({
      allErrors: true,
      strict: false,
      formats: { 'date-time': (text: string) => !Number.isNaN(Date.parse(text)) },
    }).compile(schema);
  }
  if (!validator(document)) throw new Error(`schema errors: ${JSON.stringify(validator.errors?.slice(0, 5), null, 2)}`);
}

/** A helper process that prints its port on the first line and lives until its stdin closes. */
export function startPortPrinter(command: string, args: string[]): Promise<{ port: number; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} printed no port`));
    }, 15_000);
    child.once('error', reject);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^(\d+)\n/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        port: Number(match[1]),
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            child.stdin.end();
          }),
      });
    });
  });
}
