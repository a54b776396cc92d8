import { SocktuneError } from '../core/errors.ts';
import { nonEmptyString, oneOf, validateFields } from '../core/validate.ts';
import { ARCHES, checkArchSelectors, checkTestId, DNS_LABEL, matches, runAsUser, selector, type Arch } from './field-checks.ts';
import { CONTAINER_SECURITY_CONTEXT, labelsOf, nodeSelectorOf, podSecurityContext, selectorOf, TMP_MOUNT, TMP_VOLUME } from './pod.ts';
import type { YamlValue } from './yaml.ts';

/**
 * A DaemonSet that pulls the test's image onto every node that could run a test pod, before the test
 * is rendered: its clients then start on time instead of pulling in the start margin. Each pod's init
 * container runs the image (`socktune --version`), which pulls it and proves it starts on that node's
 * architecture; then the pod only holds its place with a pause container, the image every node
 * already runs as each pod's sandbox. `kubectl rollout status` returns once every node has done it.
 */

export interface PrePullOptions {
  /** The image to pull: the test's `--image`. */
  image: string;
  /** The namespace of the DaemonSet; unset, kubectl's current one. */
  namespace?: string;
  /** Node labels a node must have to pull (the test's `--node-selector`). */
  nodeSelector?: Readonly<Record<string, string>>;
  /** The image's architecture: only nodes with that `kubernetes.io/arch` pull; `any`, every node. @default 'amd64' */
  arch?: Arch;
  /** The UID (and GID) the pods run as; null leaves both to the images and the platform. @default 65532 */
  runAsUser?: number | null;
  /** The image of the container that holds each pod after the pull. @default 'registry.k8s.io/pause:3.10' */
  pauseImage?: string;
}

export const PRE_PULL_DEFAULTS = Object.freeze({
  arch: 'amd64',
  runAsUser: 65_532,
  /** The sandbox image of current kubelets and containerd, on every node already. */
  pauseImage: 'registry.k8s.io/pause:3.10',
  /** `kubectl rollout status --timeout`: a pull of a hundred megabytes on a slow registry. */
  rolloutTimeoutSec: 600,
} as const);

const PRE_PULL_FIELDS = {
  image: nonEmptyString,
  namespace: matches(DNS_LABEL, 'a namespace name (RFC 1123 label)'),
  nodeSelector: selector,
  arch: oneOf(ARCHES),
  runAsUser,
  pauseImage: nonEmptyString,
} as const;

/** Checks every option, naming it as `nameOf` does (`options.arch` here, `--arch` for the CLI). */
export function validatePrePullOptions(
  options: PrePullOptions,
  nameOf: (key: keyof PrePullOptions) => string = (key) => `options.${key}`,
): void {
  validateFields(options, PRE_PULL_FIELDS, (key) => nameOf(key as keyof PrePullOptions));
  checkArchSelectors(options.arch, [options.nodeSelector], nameOf('arch'));
  if (options.image.startsWith('localhost/'))
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `${nameOf('image')} ${options.image} is a local name that no registry serves, so there is nothing to pull: ` +
        'push the image to a registry the nodes pull from and name it here',
    );
}

export interface RenderedPrePull {
  manifests: Record<string, YamlValue>[];
  notes: string[];
}

/** The pre-pull DaemonSet of `testId` (any id: it only names the object) and what to do with it. */
export function renderPrePull(options: PrePullOptions, testId: string, nameOf?: (key: keyof PrePullOptions) => string): RenderedPrePull {
  validatePrePullOptions(options, nameOf);
  checkTestId(testId);
  const name = `socktune-${testId}-pre-pull`;
  const arch = options.arch ?? PRE_PULL_DEFAULTS.arch;
  const nodeSelector = nodeSelectorOf(arch, options.nodeSelector);
  const small = (memory: string): YamlValue => ({ requests: { cpu: '10m', memory }, limits: { memory } });
  const daemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      labels: labelsOf(testId, 'pre-pull'),
    },
    spec: {
      selector: { matchLabels: selectorOf(testId, 'pre-pull') },
      template: {
        metadata: { labels: labelsOf(testId, 'pre-pull') },
        spec: {
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 1,
          ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
          securityContext: podSecurityContext(options.runAsUser === undefined ? PRE_PULL_DEFAULTS.runAsUser : options.runAsUser),
          initContainers: [
            {
              name: 'pull',
              image: options.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['--version'],
              // Node starting up: the executable unpacks its runtime, then prints one line.
              resources: small('256Mi'),
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: CONTAINER_SECURITY_CONTEXT,
              volumeMounts: [TMP_MOUNT],
            },
          ],
          containers: [
            {
              name: 'pause',
              image: options.pauseImage ?? PRE_PULL_DEFAULTS.pauseImage,
              imagePullPolicy: 'IfNotPresent',
              resources: small('16Mi'),
              securityContext: CONTAINER_SECURITY_CONTEXT,
            },
          ],
          volumes: [TMP_VOLUME],
        },
      },
    },
  };
  const ns = options.namespace === undefined ? '' : ` -n ${options.namespace}`;
  const where = Object.entries(nodeSelector)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const notes = [
    `socktune k8s render --pre-pull: ${options.image} onto every node${where === '' ? '' : ` labelled ${where}`}`,
    `apply:    kubectl apply${ns} -f THIS_FILE`,
    `wait:     kubectl rollout status${ns} daemonset/${name} --timeout=${PRE_PULL_DEFAULTS.rolloutTimeoutSec}s`,
    '          (returns once every such node has the image and ran it; a pull that fails shows as Init:ErrImagePull in kubectl get pods)',
    'then:     render and apply the test with the same --image',
    `clean up: kubectl delete${ns} daemonset/${name} (the nodes keep the image until the kubelet collects unused images)`,
  ];
  return { manifests: [daemonSet], notes };
}
