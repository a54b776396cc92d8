import { SocktuneError } from '../core/errors.ts';
import { integer, type FieldCheck } from '../core/validate.ts';

/** Kubernetes names and values, checked as the API server checks them, so that a render never fails at `kubectl apply`. */

/** RFC 1123 label as Kubernetes checks names and label values; short, so that `socktune-<id>-clients-<index>` fits. */
const TEST_ID = /^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$/;
export const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const LABEL_KEY = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
/** A Kubernetes quantity as resources take it: `2`, `500m`, `1.5`, `512Mi`, `1G`. */
const QUANTITY = /^(?:\d+(?:\.\d+)?|\.\d+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The node label the scheduler matches an image's architecture with. */
export const ARCH_LABEL = 'kubernetes.io/arch';
/** Node architectures the single executable is built for; `any` renders no selector (a multi-arch image). */
export const ARCHES = ['amd64', 'arm64', 'any'] as const;
export type Arch = (typeof ARCHES)[number];

export const matches =
  (pattern: RegExp, what: string): FieldCheck =>
  (value) =>
    typeof value === 'string' && pattern.test(value) ? undefined : what;

export const selector: FieldCheck = (value) =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.entries(value).every(([key, label]) => LABEL_KEY.test(key) && typeof label === 'string' && LABEL_VALUE.test(label))
    ? undefined
    : 'node labels { key: value } with valid Kubernetes label keys and values';

export const resources: FieldCheck = (value) => {
  const { cpu, memory, ...rest } = (value ?? {}) as Record<string, unknown>;
  return typeof value === 'object' &&
    Object.keys(rest).length === 0 &&
    typeof cpu === 'string' &&
    QUANTITY.test(cpu) &&
    typeof memory === 'string' &&
    QUANTITY.test(memory)
    ? undefined
    : "{ cpu, memory } as Kubernetes quantities ('1', '500m', '512Mi')";
};

export const stringList: FieldCheck = (value) =>
  Array.isArray(value) && value.every((item) => typeof item === 'string') ? undefined : 'a list of strings';

const uid = integer(1, 2 ** 31 - 1);
/** A non-root UID (runAsNonRoot refuses 0), or null: runAsUser left to the image or the platform. */
export const runAsUser: FieldCheck = (value) =>
  value === null || uid(value) === undefined ? undefined : 'a UID from 1 to 2147483647 (runAsNonRoot), or null to leave runAsUser unset';

/** Throws unless `testId` can name every object of a test. */
export function checkTestId(testId: string): void {
  if (!TEST_ID.test(testId))
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      "the test id must be 1 to 20 lowercase letters, digits or '-', starting and ending with a " +
        `letter or digit, got ${JSON.stringify(testId)}`,
    );
}

/** `--node-selector kubernetes.io/arch=...` beside an architecture option would be two answers to one question. */
export function checkArchSelectors(
  arch: Arch | undefined,
  selectors: readonly (Readonly<Record<string, string>> | undefined)[],
  archName: string,
): void {
  if (arch === 'any') return;
  if (selectors.some((labels) => labels !== undefined && Object.hasOwn(labels, ARCH_LABEL)))
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `a node selector sets ${ARCH_LABEL}; say the architecture with ${archName} (${ARCHES.join(', ')}) instead`,
    );
}
