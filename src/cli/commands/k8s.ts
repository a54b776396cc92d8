import { SocktuneError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { k8sCollectCommand } from './k8s-collect.ts';
import { k8sRenderCommand } from './k8s-render.ts';

/** `socktune k8s`: a distributed test on Kubernetes, rendered, then collected. */
export const k8sCommand: Command = {
  name: 'k8s',
  summary: "a test spread over Kubernetes pods: render its manifests, collect and merge the client pods' results",
  usage: 'socktune k8s render|collect [options]    (see socktune k8s MODE --help)',
  flags: {},
  subcommands: [k8sRenderCommand, k8sCollectCommand],
  examples: [
    'socktune k8s render --workload rr --clients 8 --servers 2 -t 30 > test.yaml && kubectl apply -f test.yaml',
    'kubectl logs -l job-name=socktune-ID-clients --prefix --tail=-1 | socktune k8s collect --expect 8',
  ],
  run() {
    return Promise.reject(
      new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose a mode: socktune k8s render or socktune k8s collect (see socktune k8s --help)'),
    );
  },
};
