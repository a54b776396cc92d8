// The README is the front page and docs/ the reference behind it: every relative link between them
// must land on a file, and every #anchor into a markdown file on one of its headings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The README says what socktune is and how to start; the reference lives in docs/. */
const MAX_README_BYTES = 12 * 1024;

/** The documents whose links are checked: README.md, bench/README.md and docs/*.md. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(ROOT, 'docs', name));
  return [join(ROOT, 'README.md'), join(ROOT, 'bench', 'README.md'), ...docs];
}

/** The lines of a markdown text outside fenced code blocks (``` or ~~~), where links and headings mean something. */
function proseLines(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) fence = marker[0]!.repeat(marker.length);
    else if (fence !== undefined && marker !== undefined && marker.startsWith(fence)) fence = undefined;
    else if (fence === undefined) lines.push(line);
  }
  return lines;
}

/** Link and image targets: `[text](target "title")`, `![alt](target)`, `[id]: target`; code spans excluded. */
function linkTargets(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(markdown)) {
    const text = line.replace(/(`+)[^`]*?\1/g, '');
    for (const match of text.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      targets.push(match[1]!.replace(/^<|>$/g, ''));
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(text);
    if (definition) targets.push(definition[1]!.replace(/^<|>$/g, ''));
  }
  return targets;
}

/** GitHub's anchor for a heading: its text lowercased, punctuation but hyphens (and `_`) dropped, spaces as hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
    .replace(/<[^>]+>/g, '') // inline HTML shows nothing of its tags
    .replace(/[`*]/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a markdown text defines: one per heading (repeats get -1, -2, …, as on GitHub), and HTML ids and names. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  const lines = proseLines(markdown);
  lines.forEach((line, index) => {
    const atx = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    const setext = /^\s{0,3}(=+|-+)\s*$/.test(line) && index > 0 && lines[index - 1]!.trim() !== '' ? lines[index - 1] : undefined;
    const heading = atx ?? setext;
    if (heading !== undefined) {
      const base = slug(heading);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      found.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<[a-z][^>]*\s(?:id|name)="([^"]+)"/gi)) found.add(match[1]!);
  });
  return found;
}

/** What is wrong with the relative links of one markdown file: a missing file, or an anchor no heading defines. */
function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  const markdown = readFileSync(file, 'utf8');
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http(s), mailto: not ours to check
    const hashAt = target.indexOf('#');
    const pathPart = hashAt === -1 ? target : target.slice(0, hashAt);
    const anchor = hashAt === -1 ? undefined : decodeURIComponent(target.slice(hashAt + 1));
    const resolved = pathPart === '' ? file : join(dirname(file), decodeURIComponent(pathPart.split('?')[0]!));
    const where = `${relative(ROOT, file)}: (${target})`;
    if (!existsSync(resolved)) {
      problems.push(`${where} points to ${relative(ROOT, resolved)}, which does not exist`);
      continue;
    }
    if (anchor === undefined || anchor === '' || !resolved.endsWith('.md') || statSync(resolved).isDirectory()) continue;
    if (!anchors(readFileSync(resolved, 'utf8')).has(anchor)) {
      problems.push(`${where}: ${relative(ROOT, resolved)} has no heading with the anchor #${anchor}`);
    }
  }
  return problems;
}

test('every relative link in README.md, bench/README.md and docs/*.md resolves, anchors included', () => {
  const problems = documents().flatMap(brokenLinks);
  assert.deepEqual(problems, [], `broken links:\n${problems.join('\n')}`);
});

test(`README.md is at most ${MAX_README_BYTES} bytes: the reference belongs in docs/`, () => {
  const bytes = statSync(join(ROOT, 'README.md')).size;
  assert.ok(bytes <= MAX_README_BYTES, `README.md is ${bytes} bytes; move reference material into docs/`);
});

test('the README links every reference document in docs/', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const linked = new Set(linkTargets(readme).map((target) => target.split('#')[0]));
  const unlinked = documents()
    .filter((file) => dirname(file) === join(ROOT, 'docs'))
    .map((file) => relative(ROOT, file))
    .filter((path) => !linked.has(path));
  assert.deepEqual(unlinked, [], 'docs the README does not link');
});

test('slugs follow GitHub: lowercase, punctuation dropped but hyphens and underscores, spaces as hyphens', () => {
  assert.equal(slug('How `tune` decides'), 'how-tune-decides');
  assert.equal(slug('`server --json`'), 'server---json');
  assert.equal(slug('MessageSocket: the fast path for small messages'), 'messagesocket-the-fast-path-for-small-messages');
  assert.equal(slug('How the socket options get in before listen/connect'), 'how-the-socket-options-get-in-before-listenconnect');
  assert.equal(slug('The three I/O models and handlers'), 'the-three-io-models-and-handlers');
  assert.equal(slug('`--raw`: any TCP service'), '--raw-any-tcp-service');
  assert.equal(slug('SOCKTUNE_ERR_USAGE (exit 2)'), 'socktune_err_usage-exit-2');
  assert.deepEqual([...anchors('# A\n\n## A\n\n```sh\n# not a heading\n```\n\nB\n-\n')], ['a', 'a-1', 'b']);
});

test('a missing file, a missing anchor and a link inside code are told apart', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-links-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'target.md'), '# Target\n\n## How `tune` decides\n');
  writeFileSync(
    join(dir, 'source.md'),
    [
      '[fine](target.md#how-tune-decides) [self](#source) [web](https://example.com/x.md#nowhere) [mail](mailto:a@b.c)',
      '# Source',
      '[gone](missing.md) ![gone too](images/missing.png) [no such heading](target.md#how-tune-chooses)',
      '`[in code](missing-in-code.md)`',
      '```',
      '[in a fence](missing-in-fence.md)',
      '```',
      '[ref]: target.md#nowhere',
    ].join('\n'),
  );
  const problems = brokenLinks(join(dir, 'source.md'));
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems[0]!, /\(missing\.md\) points to .*missing\.md, which does not exist/);
  assert.match(problems[1]!, /images\/missing\.png/);
  assert.match(problems[2]!, /has no heading with the anchor #how-tune-chooses/);
  assert.match(problems[3]!, /#nowhere/);
});
