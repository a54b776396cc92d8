import { clientArgs, seconds, serverArgs, serverNames, type ClientStart } from './command-lines.ts';
import { checkTestId } from './field-checks.ts';
import { networkPolicyOf } from './network-policy.ts';
import { labelsOf, selectorOf, testPodSpec } from './pod.ts';
import { dataPortsOf, RENDER_DEFAULTS, validateRenderOptions, type RenderOptionNamer, type RenderOptions } from './render-options.ts';
import type { YamlValue } from './yaml.ts';

/**
 * One distributed test as Kubernetes objects: M `socktune server` pods of a StatefulSet under a
 * Service, and N client pods in an Indexed Job that all start at the same wall-clock time
 * (`--start-at`), client i on server i mod M, and print their result as the last line of their log,
 * for `socktune k8s collect` to merge. Pure: the test id and the clock come in as arguments, so the
 * same input renders the same manifests.
 */

export interface RenderContext {
  /** Names every object: `socktune-<testId>-server`, `socktune-<testId>-clients`; the `socktune.io/test` label. */
  testId: string;
  /** The current Unix time in ms, from which the start time is counted. */
  now: number;
  /** How a refused option is named (validateRenderOptions); `options.<key>` when absent. */
  nameOption?: RenderOptionNamer;
}

export interface RenderedTest {
  testId: string;
  /** A `raw` test's common start, Unix ms (`--start-at`); the others start at server 0's barrier. */
  startAt?: number;
  serviceName: string;
  jobName: string;
  /** The Service, the server StatefulSet, the NetworkPolicy if asked for, and the client Job, in the order to apply them. */
  manifests: Record<string, YamlValue>[];
  /** What to do with them: apply, watch, collect, clean up; one line each. */
  notes: string[];
  /** What will likely go wrong as rendered (also among the notes). */
  warnings: string[];
}

/** A polling loop: `kubectl wait` takes one condition, and `--for=condition=complete` waits out its timeout when the Job fails. */
function waitCommand(ns: string, jobName: string): string {
  const conditions = `kubectl get${ns} job/${jobName} -o 'jsonpath={.status.conditions[?(@.status=="True")].type}'`;
  return `while s=$(${conditions}) && ! echo "$s" | grep -qE 'Complete|Failed'; do sleep 5; done; kubectl get${ns} job/${jobName}`;
}

/** How many clients the servers get, in server order ("2, 2, 1"), or in short for many servers. */
function spreadOf(clients: number, servers: number): string {
  const low = Math.floor(clients / servers);
  const high = clients % servers;
  if (servers > 8) return high === 0 ? `${low} each` : `${low + 1} each for servers 0 to ${high - 1}, ${low} for the rest`;
  return Array.from({ length: servers }, (_, server) => low + (server < high ? 1 : 0)).join(', ');
}

/** The test's objects and what to do with them. Validates `options` first. */
export function renderTest(options: RenderOptions, context: RenderContext): RenderedTest {
  validateRenderOptions(options, context.nameOption);
  const { testId, now } = context;
  checkTestId(testId);
  const nameOf = context.nameOption ?? ((key) => `options.${key}`);
  const clients = options.clients ?? RENDER_DEFAULTS.clients;
  const servers = options.servers ?? RENDER_DEFAULTS.servers;
  const port = options.port ?? RENDER_DEFAULTS.port;
  const raw = options.raw === true;
  // Bare ports have no control port to meet at: a raw test starts at a fixed time; any other at server 0's barrier.
  const waitSec = raw
    ? (options.startMarginSec ?? RENDER_DEFAULTS.startMarginSec)
    : (options.barrierTimeoutSec ?? RENDER_DEFAULTS.barrierTimeoutSec);
  const start: ClientStart = raw ? { startAt: Math.round(now + waitSec * 1000) } : { barrier: { group: testId, clients } };
  const testSec = (options.durationSec ?? RENDER_DEFAULTS.durationSec) + (options.omitSec ?? 0);
  const deadline = options.activeDeadlineSeconds ?? Math.ceil(waitSec + testSec + RENDER_DEFAULTS.deadlineSlackSec);
  const ttl = options.ttlSecondsAfterFinished ?? RENDER_DEFAULTS.ttlSecondsAfterFinished;
  const serviceName = `socktune-${testId}-server`;
  const jobName = `socktune-${testId}-clients`;
  const headless = !raw || options.headless === true;
  const names = serverNames(serviceName, servers);
  const namespace: Record<string, string> = options.namespace === undefined ? {} : { namespace: options.namespace };
  const metadata = (name: string, role: 'server' | 'client'): Record<string, YamlValue> => ({
    name,
    ...namespace,
    labels: labelsOf(testId, role),
  });

  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(serviceName, 'server'),
    spec: {
      ...(headless ? { clusterIP: 'None' } : { type: 'ClusterIP' }),
      selector: selectorOf(testId, 'server'),
      ports: [{ name: 'socktune', port, targetPort: 'socktune', protocol: 'TCP' }],
    },
  };
  // A StatefulSet gives server k the stable name <name>-k, which the headless Service resolves to that pod alone.
  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: metadata(serviceName, 'server'),
    spec: {
      serviceName,
      replicas: servers,
      // All at once, not one after the other: the clients' start time does not wait.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selectorOf(testId, 'server') },
      template: {
        metadata: { labels: labelsOf(testId, 'server') },
        spec: testPodSpec(options, testId, 'server', serverArgs(options), {
          restartPolicy: 'Always',
          container: {
            ports: [{ name: 'socktune', containerPort: port, protocol: 'TCP' }],
            // Ready once it listens: a name resolves, and kube-proxy sends connections, only to a ready pod.
            readinessProbe: { tcpSocket: { port: 'socktune' }, periodSeconds: 5 },
          },
        }),
      },
    },
  };
  const policy = options.networkPolicy === true ? [networkPolicyOf(testId, serviceName, namespace, port, dataPortsOf(options))] : [];
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      ...metadata(jobName, 'client'),
      annotations:
        'startAt' in start
          ? { 'socktune.io/start-at': String(start.startAt), 'socktune.io/start-at-utc': new Date(start.startAt).toISOString() }
          : { 'socktune.io/barrier': `${names.hosts[0]!}:${port} ${testId} ${clients}` },
    },
    spec: {
      completionMode: 'Indexed',
      completions: clients,
      parallelism: clients,
      // A retried client would start late and be refused anyway: one failure fails the Job.
      backoffLimit: 0,
      activeDeadlineSeconds: deadline,
      ttlSecondsAfterFinished: ttl,
      template: {
        metadata: { labels: labelsOf(testId, 'client') },
        spec: testPodSpec(options, testId, 'client', clientArgs(options, names, start), { restartPolicy: 'Never' }),
      },
    },
  };

  const warnings = options.image.startsWith('localhost/')
    ? [
        `warning: ${nameOf('image')} ${options.image} is a local name that no registry serves: a node runs it only if it ` +
          'already has it (kind load, minikube image load); push the image to a registry the nodes pull from and name it here',
      ]
    : [];
  const ns = options.namespace === undefined ? '' : ` -n ${options.namespace}`;
  const notes = [
    `socktune k8s render: test ${testId}, ${options.workload}${raw ? ' --raw' : ''}, ` +
      `${clients} client pod(s) against ${servers} server pod(s)`,
    headless
      ? `spread:   client i reaches server i mod ${servers}: ${spreadOf(clients, servers)} client(s)`
      : 'spread:   kube-proxy picks a server pod for every connection (ClusterIP)',
    'startAt' in start
      ? `clients start at ${new Date(start.startAt).toISOString()} (--start-at ${start.startAt}); apply within ` +
        `${waitSec} s: a client more than ` +
        `${seconds(options.startLateToleranceSec ?? RENDER_DEFAULTS.startLateToleranceSec)} s late refuses to run`
      : `start:    the clients meet at a start barrier on ${names.hosts[0]!}:${port} and start together once all ` +
        `${clients} are there (each waits up to ${waitSec} s: time to schedule and pull), at one instant of that server's clock`,
    ...warnings,
    `apply:    kubectl apply${ns} -f THIS_FILE`,
    `watch:    kubectl get pods${ns} -l socktune.io/test=${testId} -o wide -w`,
    `wait:     ${waitCommand(ns, jobName)}`,
    `          (ends when the Job completes or fails; activeDeadlineSeconds fails it ${deadline} s after it starts)`,
    `collect:  kubectl logs${ns} -l job-name=${jobName} --prefix --tail=-1 | socktune k8s collect --expect ${clients}`,
    '   or:    socktune k8s collect ' +
      `--kubectl${ns === '' ? '' : ` --namespace ${options.namespace}`} --test-id ${testId} ` +
      `--expect ${clients}`,
    `servers:  kubectl logs${ns} -l socktune.io/test=${testId},app.kubernetes.io/component=server --prefix --tail=-1`,
    `clean up: kubectl delete${ns} statefulset,service,job${policy.length > 0 ? ',networkpolicy' : ''} -l socktune.io/test=${testId}`,
    `the Job and its pods' logs are deleted ${ttl} s after it finishes (ttlSecondsAfterFinished): collect before`,
  ];
  return {
    testId,
    ...('startAt' in start ? { startAt: start.startAt } : {}),
    serviceName,
    jobName,
    manifests: [service, statefulSet, ...policy, job],
    notes,
    warnings,
  };
}

/** The manifests as one `v1` List, as `kubectl get -o json` prints several objects. */
export function asList(rendered: { manifests: Record<string, YamlValue>[] }): Record<string, YamlValue> {
  return { apiVersion: 'v1', kind: 'List', metadata: {}, items: rendered.manifests };
}
