import { spawn, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocktuneError } from '../../../core/errors.ts';
import type { ServerTarget } from '../../control/remote-test.ts';

const ENTRY = fileURLToPath(new URL(`./local-server-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const START_TIMEOUT_MS = 15_000;

/** A socktune server in a child process on loopback; `stop()` ends it, and it ends by itself if this process dies. */
export class LocalServer {
  readonly target: ServerTarget;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess, target: ServerTarget) {
    this.#child = child;
    this.target = target;
  }

  /** The server process, e.g. to pin it to CPUs of its own. */
  get pid(): number {
    return this.#child.pid!;
  }

  static start(): Promise<LocalServer> {
    const child = spawn(process.execPath, [ENTRY], { stdio: ['pipe', 'pipe', 'inherit'] });
    return new Promise((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => fail(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', 'the local socktune server did not start in time')),
        START_TIMEOUT_MS,
      );
      const fail = (error: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(error);
      };
      child.once('error', fail);
      child.once('exit', (code) => fail(new SocktuneError('SOCKTUNE_ERR_LISTEN', `the local socktune server exited with code ${code}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n')[0];
        if (!output.includes('\n') || line === undefined) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        const address = JSON.parse(line) as { address: string; port: number };
        resolve(new LocalServer(child, { host: address.address, port: address.port }));
      });
    });
  }

  stop(): Promise<void> {
    if (this.#child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#child.stdin!.end();
    });
  }
}
