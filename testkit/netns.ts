/**
 * Test hosts on one machine: network namespaces joined by a bridge (itself in a namespace of its
 * own, so nothing is added to the machine's namespace), addresses in 198.18.0.0/15 (reserved for
 * benchmarking), links optionally rate-limited with tc tbf on both directions. Everything is torn
 * down by `destroy()`, and namespaces left by a run that died are swept by the next one.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PREFIX = 'socktune-';
const SUBNET = '198.18.0';

export interface LinkSpec {
  /** Rate on both directions of this host's link, in Mbit/s (tc tbf); unlimited when absent. */
  rateMbit?: number;
  /** Delay added on both directions (tc netem, with the rate); only where netemAvailable(). */
  delayMs?: number;
}

export interface TestHost {
  name: string;
  namespace: string;
  address: string;
}

function stderrOf(error: unknown): string {
  return (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  const probe = `${PREFIX}probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `network namespaces are not permitted here (ip netns add: ${stderrOf(error)})`;
  }
}

/** Whether this kernel has the netem qdisc (delay, loss); tried on a throwaway namespace's loopback. */
export function netemAvailable(): boolean {
  const probe = `${PREFIX}netem-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['-n', probe, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
    execFileSync('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  } finally {
    spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function namespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(PREFIX));
}

/** Deletes namespaces a test run left behind when its process died before tearing down. */
async function sweepStale(): Promise<void> {
  for (const name of await namespaces()) {
    const pid = Number(/^socktune-(\d+)-/.exec(name)?.[1]);
    if (pid && !processAlive(pid)) await run('ip', ['netns', 'del', name]).catch(() => {});
  }
}

/**
 * The shaping qdisc of one interface: tbf (a token bucket of about 4 ms of traffic, 50 ms of queue
 * before drops), or netem when a delay is asked for; undefined for a plain link.
 */
function qdiscArgs(namespace: string, device: string, link: LinkSpec): string[] | undefined {
  const head = ['-n', namespace, 'qdisc', 'add', 'dev', device, 'root'];
  if (link.delayMs !== undefined)
    return [...head, 'netem', 'delay', `${link.delayMs}ms`, ...(link.rateMbit === undefined ? [] : ['rate', `${link.rateMbit}mbit`])];
  if (link.rateMbit === undefined) return undefined;
  const burstBytes = Math.max(16 * 1024, Math.round((link.rateMbit * 1e6) / 8 / 250));
  return [...head, 'tbf', 'rate', `${link.rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms'];
}

let networks = 0;

export class TestNetwork {
  readonly hosts = new Map<string, TestHost>();
  readonly #id: string;
  readonly #switch: string;
  readonly #children = new Set<ChildProcess>();
  #destroyed = false;

  private constructor(id: string) {
    this.#id = id;
    this.#switch = `${id}-switch`;
  }

  /** Hosts named by `links`' keys, each on its own link to one bridge. */
  static async create(links: Record<string, LinkSpec>): Promise<TestNetwork> {
    await sweepStale();
    const network = new TestNetwork(`${PREFIX}${process.pid}-${networks++}`);
    const sw = network.#switch;
    try {
      await run('ip', ['netns', 'add', sw]);
      await run('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
      await run('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
      for (const [index, [name, link]] of Object.entries(links).entries()) {
        const host: TestHost = { name, namespace: `${network.#id}-${name}`, address: `${SUBNET}.${index + 1}` };
        const port = `port${index + 1}`;
        await run('ip', ['netns', 'add', host.namespace]);
        await run('ip', ['link', 'add', 'eth0', 'netns', host.namespace, 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
        await run('ip', ['-n', sw, 'link', 'set', port, 'master', 'br0']);
        await run('ip', ['-n', sw, 'link', 'set', port, 'up']);
        await run('ip', ['-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
        await run('ip', ['-n', host.namespace, 'link', 'set', 'eth0', 'up']);
        await run('ip', ['-n', host.namespace, 'link', 'set', 'lo', 'up']);
        for (const [namespace, device] of [
          [host.namespace, 'eth0'],
          [sw, port],
        ] as const) {
          const args = qdiscArgs(namespace, device, link);
          if (args) await run('tc', args);
        }
        network.hosts.set(name, host);
      }
      return network;
    } catch (error) {
      await network.destroy();
      throw new Error(`could not build the test network: ${stderrOf(error)}`, { cause: error });
    }
  }

  host(name: string): TestHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no test host ${name}`);
    return host;
  }

  /** Starts a program inside a host; destroy() kills it if it still runs. */
  spawn(hostName: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(hostName).namespace, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...options,
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Runs a program inside a host to completion, killed after `timeoutMs`. */
  async exec(
    hostName: string,
    command: string,
    args: string[],
    timeoutMs = 60_000,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = this.spawn(hostName, command, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  /** Waits until something listens on a TCP port inside a host (asked of its kernel with ss, no connection made). */
  async waitForListening(hostName: string, port: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const { stdout } = await run('ss', ['-N', this.host(hostName).namespace, '-Hltn', `sport = :${port}`]);
      if (stdout.trim().length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`nothing listens on ${hostName}:${port} after ${timeoutMs} ms`);
  }

  /** The qdiscs on a host's interface, as tc shows them. */
  async qdiscs(hostName: string): Promise<string> {
    const { stdout } = await run('tc', ['-n', this.host(hostName).namespace, 'qdisc', 'show', 'dev', 'eth0']);
    return stdout;
  }

  /** Kills what still runs inside, then deletes every namespace of this network, whole or half made (their veth pairs go with them). */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const exits = [...this.#children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    );
    await Promise.all(exits);
    for (const name of await namespaces()) {
      if (name.startsWith(`${this.#id}-`)) await run('ip', ['netns', 'del', name]).catch(() => {});
    }
  }
}

/** Whether a namespace of this name still exists (for teardown tests). */
export async function namespaceExists(name: string): Promise<boolean> {
  return (await namespaces()).includes(name);
}
