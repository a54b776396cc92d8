import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to completion with `input` on its stdin (or none), killed if it outlives
 * `timeoutMs`; resolves with its exit code and output, never rejects on a non-zero exit.
 */
export function runProcess(
  command: string,
  args: string[],
  options: {
    cwd?: string | undefined;
    env?: NodeJS.ProcessEnv;
    timeoutMs: number;
    input?: string;
    label?: string;
    /** A signal to send once, this long after the start (Ctrl-C in the middle of a run). */
    signalAfter?: { ms: number; signal: NodeJS.Signals };
    /** Called with everything printed so far, after each chunk: for acting on an event the program reports. */
    onOutput?: (output: { stdout: string; stderr: string; child: ChildProcess }) => void;
  },
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let stdout = '';
    let stderr = '';
    const printed = (): void => options.onOutput?.({ stdout, stderr, child });
    child.stdout!.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), printed()));
    child.stderr!.on('data', (chunk: Buffer) => ((stderr += chunk.toString()), printed()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.label ?? `${command} ${args.join(' ')}`} did not finish in ${options.timeoutMs} ms\n${stderr}`));
    }, options.timeoutMs);
    const signal = options.signalAfter && setTimeout(() => child.kill(options.signalAfter!.signal), options.signalAfter.ms);
    child.once('error', (error) => {
      clearTimeout(timer);
      clearTimeout(signal);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      clearTimeout(signal);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Reads until `count` bytes arrived (or the socket ends), with a deadline so a test never hangs. */
export function readBytes(socket: Socket, count: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => finish(new Error(`timed out after ${received} of ${count} bytes`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= count) finish();
    };
    const onEnd = (): void => finish();
    function finish(error?: Error): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held (for counters other threads update). */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Whether an echo server answers `text` on this connection (false if it closes or resets it instead). */
export async function echoes(socket: Socket, text: string): Promise<boolean> {
  socket.on('error', () => {});
  socket.write(text);
  const reply = await Promise.race([
    readBytes(socket, text.length, 5000).catch(() => Buffer.alloc(0)),
    closed(socket).then(() => Buffer.alloc(0)),
  ]);
  return reply.toString() === text;
}

/** A plain TCP client connected to 127.0.0.1:port. */
export function connectedClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Waits for 'close' whatever errors come first (events.once would reject on 'error'). */
export function closed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** The skmem fields `ss` shows for one established connection on a local port. */
export async function ssBufferSizes(filter: string): Promise<{ rb: number; tb: number }> {
  const { stdout } = await run('ss', ['-tmnH', 'state', 'established', filter]);
  const match = /skmem:\([^)]*rb(\d+),t\d+,tb(\d+)/.exec(stdout);
  if (!match) throw new Error(`no skmem in ss output: ${stdout}`);
  return { rb: Number(match[1]), tb: Number(match[2]) };
}

/** A TCP port nothing listens on now (bound, then closed). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits until something listens on the TCP port (asked of the kernel with `ss`, without connecting to it). */
export async function waitForListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { stdout } = await run('ss', ['-Hltn', `sport = :${port}`]);
    if (stdout.trim().length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

/** `bytes` cut at the given positions (taken modulo its length + 1, deduplicated, in order): for random-chunking properties. */
export function chunksAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const offset of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(previous, offset));
    previous = offset;
  }
  return chunks;
}
