import { ARCH_LABEL, type Arch } from './field-checks.ts';
import { RENDER_DEFAULTS, type AntiAffinity, type PodResources, type RenderOptions } from './render-options.ts';
import type { YamlValue } from './yaml.ts';

/** The pods' shared shape: locked down, labelled by test and role, placed by the options. */

export type Role = 'server' | 'client' | 'pre-pull';

export function labelsOf(testId: string, role: Role): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'socktune',
    'app.kubernetes.io/component': role,
    'socktune.io/test': testId,
  };
}

export function selectorOf(testId: string, role: Role): Record<string, string> {
  return { 'socktune.io/test': testId, 'app.kubernetes.io/component': role };
}

/** The node selector: the image's architecture, then the labels asked for. */
export function nodeSelectorOf(arch: Arch, ...selectors: (Readonly<Record<string, string>> | undefined)[]): Record<string, string> {
  return Object.assign(arch === 'any' ? {} : { [ARCH_LABEL]: arch }, ...selectors) as Record<string, string>;
}

/** Non-root with no privilege; `runAsUser` null leaves the UID to the image or the platform (OpenShift assigns one). */
export function podSecurityContext(runAsUser: number | null): Record<string, YamlValue> {
  return {
    runAsNonRoot: true,
    ...(runAsUser === null ? {} : { runAsUser, runAsGroup: runAsUser }),
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export const CONTAINER_SECURITY_CONTEXT = Object.freeze({
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: Object.freeze({ drop: Object.freeze(['ALL']) }),
});

/** The root file system is read-only; the executable unpacks its runtime under /tmp. */
export const TMP_VOLUME = Object.freeze({ name: 'tmp', emptyDir: Object.freeze({ medium: 'Memory', sizeLimit: '16Mi' }) });
export const TMP_MOUNT = Object.freeze({ name: 'tmp', mountPath: '/tmp' });

/** Clients off the servers' nodes (and back), and each role spread over nodes where it can be. */
function affinityOf(testId: string, role: 'server' | 'client', mode: AntiAffinity): YamlValue | undefined {
  if (mode === 'none') return undefined;
  const term = (other: Role): Record<string, YamlValue> => ({
    labelSelector: { matchLabels: selectorOf(testId, other) },
    topologyKey: 'kubernetes.io/hostname',
  });
  const other: Role = role === 'server' ? 'client' : 'server';
  const preferred = [
    ...(mode === 'preferred' ? [{ weight: 100, podAffinityTerm: term(other) }] : []),
    { weight: 50, podAffinityTerm: term(role) },
  ];
  return {
    podAntiAffinity: {
      ...(mode === 'required' ? { requiredDuringSchedulingIgnoredDuringExecution: [term(other)] } : {}),
      preferredDuringSchedulingIgnoredDuringExecution: preferred,
    },
  };
}

function resourcesOf(resources: PodResources, cpuLimit: boolean): YamlValue {
  return {
    requests: { cpu: resources.cpu, memory: resources.memory },
    limits: cpuLimit ? { cpu: resources.cpu, memory: resources.memory } : { memory: resources.memory },
  };
}

/** The pod template of a test's servers or clients: non-root, no privilege, read-only root, no API token. */
export function testPodSpec(
  options: RenderOptions,
  testId: string,
  role: 'server' | 'client',
  args: string[],
  extra: { restartPolicy: string; container?: Record<string, YamlValue> },
): Record<string, YamlValue> {
  const nodeSelector = nodeSelectorOf(
    options.arch ?? RENDER_DEFAULTS.arch,
    options.nodeSelector,
    role === 'server' ? options.serverNodeSelector : options.clientNodeSelector,
  );
  const affinity = affinityOf(testId, role, options.antiAffinity ?? RENDER_DEFAULTS.antiAffinity);
  const env =
    options.authSecret === undefined
      ? undefined
      : [{ name: 'SOCKTUNE_AUTH_TOKEN', valueFrom: { secretKeyRef: { name: options.authSecret, key: 'token' } } }];
  return {
    restartPolicy: extra.restartPolicy,
    // Service links would add a dozen variables per Service in the namespace; the API token is not needed.
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 30,
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(affinity === undefined ? {} : { affinity }),
    securityContext: podSecurityContext(options.runAsUser === undefined ? RENDER_DEFAULTS.runAsUser : options.runAsUser),
    containers: [
      {
        name: role,
        image: options.image,
        imagePullPolicy: 'IfNotPresent',
        args,
        ...extra.container,
        ...(env === undefined ? {} : { env }),
        resources: resourcesOf(
          (role === 'server' ? options.serverResources : options.clientResources) ??
            (role === 'server' ? RENDER_DEFAULTS.serverResources : RENDER_DEFAULTS.clientResources),
          options.cpuLimit ?? RENDER_DEFAULTS.cpuLimit,
        ),
        // A failed client's last log lines (its error) become its termination message.
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: CONTAINER_SECURITY_CONTEXT,
        volumeMounts: [TMP_MOUNT],
      },
    ],
    volumes: [TMP_VOLUME],
  };
}
