import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What ESLint's layer rules say of `code` placed in the (existing) file `path`: the messages of no-restricted-imports and -syntax alone. */
async function layerMessages(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: ROOT,
    ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports' || ruleId === 'no-restricted-syntax',
  });
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
  for (const [file, code, message] of [
    ['src/core/errors.ts', "import * as all from '../index.ts';\nexport const probe = all;\n", /src\/core\/ may not import src\/index.ts/],
    ['src/bench/engines/rr.ts', "import * as all from '../../index.ts';\nexport const probe = all;\n", /may not import src\/index.ts/],
    ['src/core/errors.ts', "export const probe = await import('../cli/main.ts');\n", /no import\(\) of a module path below src\/cli\//],
  ] as const) {
    const messages = await layerMessages(file, code);
    assert.equal(messages.length, 1, `${file}: ${code}: ${messages.join('; ')}`);
    assert.match(messages[0]!, message);
  }
});

test('no import cycle among the modules of src/, type-only imports included', () => {
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(ROOT, 'src', file));
  const edges = new Map(
    files.map((file) => {
      const text = readFileSync(file, 'utf8');
      const targets = [...text.matchAll(/^(?:import|export)[^'";]*?from '(\.{1,2}\/[^']+\.ts)'/gm)].map((match) =>
        resolve(dirname(file), match[1]!),
      );
      return [file, targets];
    }),
  );
  assert.ok(edges.size > 100 && [...edges.values()].flat().length > 400, 'the imports were found');
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      const cycle = stack.slice(stack.indexOf(file)).map((path) => relative(ROOT, path));
      assert.fail(`import cycle: ${[...cycle, relative(ROOT, file)].join(' → ')}`);
    }
    state.set(file, 'open');
    stack.push(file);
    for (const target of edges.get(file) ?? []) visit(target);
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) visit(file);
});
