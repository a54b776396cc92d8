import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What ESLint's layer rule says of `code` placed in the (existing) file `path`: the messages of no-restricted-imports alone. */
async function layerMessages(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT, ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports' });
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${path}` });
  return result!.messages.map((message) => message.message);
}

test("the linter enforces docs/architecture.md's layers: no import up or sideways, every import down", async () => {
  const refused: [string, string, RegExp][] = [
    ['src/core/errors.ts', '../cli/main.ts', /src\/core\/ may not import cli\//],
    ['src/framing/length-prefix.ts', '../transport/client/connect.ts', /src\/framing\/ may not import transport\//],
    ['src/protocols/iperf3/codec.ts', '../../transport/io/pump.ts', /src\/protocols\/ may not import transport\//],
    ['src/transport/client/connect.ts', '../../bench/results/result.ts', /src\/transport\/ may not import bench\//],
    ['src/transport/client/connect.ts', '../../protocols/iperf3/codec.ts', /src\/transport\/ may not import protocols\//],
    ['src/transport/io/pump.ts', '../server/admission.ts', /src\/transport\/io\/ may not import transport\/server\//],
    ['src/transport/io/pump.ts', '../../bench/results/result.ts', /src\/transport\/io\/ may not import bench\//],
    ['src/bench/results/merge.ts', '../engines/rr.ts', /src\/bench\/results\/ may not import bench\/engines\//],
    ['src/bench/engines/rr.ts', '../tune/rank.ts', /src\/bench\/engines\/ may not import bench\/tune\//],
    ['src/bench/engines/rr.ts', '../servers/control/control-server.ts', /src\/bench\/engines\/ may not import bench\/servers\//],
    ['src/bench/servers/iperf3/iperf3-server.ts', '../../engines/iperf3.ts', /src\/bench\/servers\/ may not import bench\/engines\//],
    ['src/protocols/iperf3/codec.ts', '../../k8s/render.ts', /src\/protocols\/ may not import k8s\//],
    ['src/k8s/render.ts', '../protocols/iperf3/codec.ts', /src\/k8s\/ may not import protocols\//],
  ];
  for (const [file, imported, message] of refused) {
    const messages = await layerMessages(file, `import * as above from '${imported}';\nexport const probe = above;\n`);
    assert.equal(messages.length, 1, `${file} importing ${imported}: ${messages.join('; ')}`);
    assert.match(messages[0]!, message);
  }
  const allowed: [string, string][] = [
    ['src/cli/main.ts', '../bench/tune/rank.ts'],
    ['src/bench/tune/run.ts', '../engines/rr.ts'],
    ['src/bench/engines/iperf3.ts', '../../protocols/iperf3/codec.ts'],
    ['src/bench/servers/iperf3/iperf3-server.ts', '../../../transport/server/socktune-server.ts'],
    ['src/transport/models/loop.ts', '../server/admission.ts'],
    ['src/transport/server/admission.ts', '../io/peer-slots.ts'],
    ['src/protocols/sockperf/codec.ts', '../../framing/partial-message.ts'],
  ];
  for (const [file, imported] of allowed) {
    assert.deepEqual(
      await layerMessages(file, `import * as below from '${imported}';\nexport const probe = below;\n`),
      [],
      `${file} may import ${imported}`,
    );
  }
});
