import type { PortRange } from './render-options.ts';
import { labelsOf, selectorOf } from './pod.ts';
import type { YamlValue } from './yaml.ts';

/**
 * Ingress to the test's server pods from its client pods alone: on the port, and on the control
 * server's data ports, where each test's data connections (TCP) and datagrams (UDP) arrive. A policy
 * that opened the control port alone would break every test: its data go to a port the server picks.
 * The kubelet's probes come from the node, which a NetworkPolicy does not filter.
 */
export function networkPolicyOf(
  testId: string,
  name: string,
  namespace: Readonly<Record<string, string>>,
  port: number,
  dataPorts: PortRange | undefined,
): Record<string, YamlValue> {
  const range = (protocol: string, ports: PortRange): YamlValue => ({ protocol, port: ports.first, endPort: ports.last });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, ...namespace, labels: labelsOf(testId, 'server') },
    spec: {
      podSelector: { matchLabels: selectorOf(testId, 'server') },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: selectorOf(testId, 'client') } }],
          ports: [{ protocol: 'TCP', port }, ...(dataPorts === undefined ? [] : [range('TCP', dataPorts), range('UDP', dataPorts)])],
        },
      ],
    },
  };
}
