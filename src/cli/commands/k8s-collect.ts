import { spawn } from 'node:child_process';
import { constants as bufferConstants } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { SocktuneError } from '../../core/errors.ts';
import type { PodLog, ServerShare } from '../../k8s/collect.ts';
import { str } from '../client-settings.ts';
import type { Command, Io, Values } from '../command.ts';
import { parseCount } from '../units.ts';
import { printMerged, readLimited } from './merge.ts';

/** The most pod-log input collect holds from kubectl, stdin or one file: every pod's log at once, as one string. */
const MAX_LOG_BYTES = Math.min(512 * 1024 * 1024, bufferConstants.MAX_STRING_LENGTH);

async function readInput(file: string): Promise<string> {
  if (file === '-') {
    if (process.stdin.isTTY)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'give the pod logs as files, or pipe kubectl logs --prefix into stdin');
    return readLimited(process.stdin, 'stdin', MAX_LOG_BYTES);
  }
  return readLimited(createReadStream(file), file, MAX_LOG_BYTES);
}

/** `kubectl logs` of the test's client pods, prefixed by pod; every line (the result line is long). */
function kubectlLogs(testId: string, namespace: string | undefined): Promise<string> {
  const args = [
    'logs',
    ...(namespace === undefined ? [] : ['--namespace', namespace]),
    '--selector',
    `socktune.io/test=${testId},app.kubernetes.io/component=client`,
    '--prefix',
    '--tail=-1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_LOG_BYTES) {
        child.kill();
        reject(
          new SocktuneError('SOCKTUNE_ERR_MERGE', `kubectl logs printed more than ${MAX_LOG_BYTES} bytes: not a socktune test's logs`),
        );
      } else chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new SocktuneError(
          'SOCKTUNE_ERR_USAGE',
          error.code === 'ENOENT'
            ? 'kubectl is not on PATH: give the pod logs as files or on stdin instead of --kubectl'
            : `cannot run kubectl: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else
        reject(
          new SocktuneError(
            'SOCKTUNE_ERR_MERGE',
            `kubectl ${args.join(' ')} failed (exit ${String(code)}): ${stderr.trim() || 'no message'}`,
          ),
        );
    });
  });
}

async function podLogs(values: Values, files: string[]): Promise<PodLog[]> {
  const { splitPodLogs } = await import('../../k8s/collect.ts');
  const testId = str(values, 'test-id');
  const namespace = str(values, 'namespace');
  if (values.kubectl) {
    if (testId === undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--kubectl needs --test-id: the socktune.io/test label of the pods');
    if (files.length > 0) throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--kubectl reads the logs itself: drop the files');
    return splitPodLogs(await kubectlLogs(testId, namespace), 'kubectl');
  }
  if (testId !== undefined || namespace !== undefined)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--test-id and --namespace go with --kubectl');
  const inputs = files.length === 0 ? ['-'] : files;
  const texts = await Promise.all(inputs.map(async (file) => ({ file, text: await readInput(file) })));
  return texts.flatMap(({ file, text }) => splitPodLogs(text, file === '-' ? 'stdin' : file));
}

function printShares(io: Io, shares: readonly ServerShare[]): void {
  io.out(`clients per server (the -c each client reached), ${shares.length} server(s):`);
  for (const share of shares) io.out(`  ${share.server}  ${share.clients}`);
}

export const k8sCollectCommand: Command = {
  name: 'k8s collect',
  summary: "merge the results of a test's client pods from their logs (kubectl logs --prefix, or one file per pod)",
  usage:
    'socktune k8s collect [LOG...|-] [--expect N] [--json]\n       socktune k8s collect ' +
    '--kubectl --test-id ID [-n NAMESPACE] [--expect N] [--json]',
  positionals: 'log files: kubectl logs --prefix output, or one file per pod; - or none: stdin',
  flags: {
    expect: { help: 'the number of client pods the test ran: fewer or more results are refused', spec: { type: 'string' }, value: '<n>' },
    kubectl: { help: "run kubectl logs for the test's client pods instead of reading files", spec: { type: 'boolean' } },
    'test-id': { help: 'with --kubectl: the test (label socktune.io/test)', spec: { type: 'string' }, value: '<id>' },
    namespace: { help: 'with --kubectl: the namespace', spec: { type: 'string', short: 'n' }, value: '<name>' },
    json: {
      help: 'print the merged document (schema socktune/1, command "merge") with the clients of each server',
      spec: { type: 'boolean' },
    },
  },
  examples: [
    'kubectl logs -l job-name=socktune-ab12cd-clients --prefix --tail=-1 | socktune k8s collect --expect 8',
    'socktune k8s collect --kubectl --test-id ab12cd --expect 8 --json > merged.json',
    'socktune k8s collect client-0.log client-1.log client-2.log',
  ],
  async run(values, io, files) {
    const expectText = str(values, 'expect');
    const expect = expectText === undefined ? undefined : parseCount(expectText, '--expect', 1, 100_000);
    const logs = await podLogs(values, files);
    const { collectSources, serverShares } = await import('../../k8s/collect.ts');
    const { mergeResults } = await import('../../bench/results/merge.ts');
    const sources = collectSources(logs, expect === undefined ? {} : { expect });
    const merged = mergeResults(sources);
    const shares = serverShares(sources);
    if (values.json) io.out(JSON.stringify({ ...merged, clientsPerServer: shares }, null, 2));
    else {
      printMerged(io, merged);
      printShares(io, shares);
    }
    return 0;
  },
};
