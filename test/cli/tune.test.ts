import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdir, readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { createServer, type ServerOptions } from '../../src/index.ts';
import { assertSchema, runCli } from '../../testkit/cli.ts';

const artifacts = new URL('../../test-artifacts/', import.meta.url).pathname;

interface TuneDocument {
  report: string;
  scenarios: {
    ranking: { label: string; samples: number[]; config: { bufferSize?: number; ioModel: string } }[];
    trials: { label: string; metric: number | null }[];
    recommendation: { createServer: ServerOptions } | null;
  }[];
}

async function tune(args: string[], reportName: string): Promise<TuneDocument> {
  await mkdir(artifacts, { recursive: true });
  const reportArgs = args.includes('--no-report') ? [] : ['--report', `${artifacts}${reportName}`];
  const result = await runCli(
    [
      'tune',
      '--quick',
      '--json',
      ...reportArgs,
      ...(args.includes('--duration-per-trial') ? [] : ['--duration-per-trial', '0.1']),
      ...args,
    ],
    200_000,
  );
  assert.equal(result.code, 0, result.stderr);
  const document = JSON.parse(result.stdout) as TuneDocument;
  assertSchema(document);
  return document;
}

function assertEveryTrialCounted(document: TuneDocument, gridSizes: number[]): void {
  for (const scenario of document.scenarios) {
    const samples = scenario.ranking.reduce((n, entry) => n + entry.samples.length, 0);
    const measured = scenario.trials.filter((trial) => trial.metric !== null).length;
    assert.equal(samples, measured, 'every measured trial is a sample of its configuration');
    assert.equal(scenario.ranking.length, gridSizes[document.scenarios.indexOf(scenario)], 'the whole grid was tried at least once');
    assert.ok(
      scenario.ranking.some((entry) => entry.samples.length >= 3),
      'survivors were repeated',
    );
  }
}

test(
  'tune --quick --json (stream): schema, every trial, a recommendation that round-trips into createServer',
  { timeout: 150_000 },
  async () => {
    const document = await tune(
      ['--io-model', 'workers,thread-per-conn', '-w', '64K,1M', '--duration-per-trial', '0.05'],
      'tune-stream.html',
    );
    assertEveryTrialCounted(document, [9]);
    const [scenario] = document.scenarios;
    const options = scenario!.recommendation!.createServer;
    const server = createServer(options);
    await server.listen();
    const effective = server.effectiveSocketOptions();
    if (options.receiveBufferSize !== undefined) assert.equal(effective.receiveBufferSize, options.receiveBufferSize * 2);
    assert.equal(effective.noDelay, options.noDelay);
    await server.close();
    // The same holds for any ranked configuration with a buffer size.
    const sized = scenario!.ranking.find((entry) => entry.config.bufferSize === 65536)!;
    const sizedServer = createServer({ sendBufferSize: sized.config.bufferSize!, receiveBufferSize: sized.config.bufferSize! });
    await sizedServer.listen();
    assert.equal(sizedServer.effectiveSocketOptions().receiveBufferSize, 131072);
    await sizedServer.close();
  },
);

test(
  'tune --quick --workload rr: the HTML report renders its charts in headless Chromium',
  { timeout: 180_000, skip: existsSync('/usr/bin/chromium') ? false : 'chromium is not installed (.ci/run installs it)' },
  async () => {
    // A smaller grid (the loop model, autotuned and 256K buffers, Nagle and depth) keeps the test short.
    const document = await tune(
      ['--workload', 'rr', '--conns', '2', '--objective', 'p99', '--io-model', 'loop', '-w', '256K'],
      'tune-rr.html',
    );
    assertEveryTrialCounted(document, [8]);
    const html = await readFile(document.report, 'utf8');
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'the report is self-contained');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(`file://${document.report}`);
      const ranking = document.scenarios[0]!.ranking.length;
      assert.equal(await page.locator('svg.bar-chart rect.bar').count(), ranking, 'one bar per ranked configuration');
      assert.equal(await page.locator('svg.bar-chart line.error-bar').count(), ranking);
      const lineCharts = page.locator('svg.line-chart');
      assert.equal(await lineCharts.count(), 2, 'rate over time and percentile curves');
      assert.ok((await lineCharts.nth(0).locator('circle.point').count()) > 3);
      assert.ok((await lineCharts.nth(1).locator('circle.point').count()) >= 10);
      const box = await page.locator('svg.bar-chart').boundingBox();
      assert.ok(box && box.width > 500 && box.height > 100, 'the chart has a size on screen');
      assert.match(await page.locator('pre.snippet').innerText(), /createServer\(\{/);
      // Every verdict and note is explained; legends sit under the plot, not on the data; rates start at zero.
      const legend = await page.locator('dl.legend-notes').first().innerText();
      for (const term of [
        'range',
        'confidence interval',
        'verdict',
        'better',
        'same',
        'worse',
        'dropped after round N',
        'client saturated',
        'buffer capped by kernel',
      ])
        assert.ok(legend.includes(term), `the legend explains "${term}"`);
      for (const chart of await lineCharts.all()) {
        const plot = (await chart.locator('rect.plot-area').boundingBox())!;
        for (const entry of await chart.locator('text.legend').all())
          assert.ok((await entry.boundingBox())!.y > plot.y + plot.height, 'a legend entry lies below the plot area');
      }
      assert.equal(await page.locator('svg.bar-chart text.tick').first().textContent(), '0.0 µs', 'the p99 axis starts at zero');
      await page.screenshot({ path: `${artifacts}tune-report.png`, fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
);

test(
  'tune --quick --workload mixed: stream, rr and msg each ranked with their own objective; --io-model and -w narrow the grid',
  { timeout: 240_000 },
  async () => {
    const document = (await tune(['--workload', 'mixed', '--no-report', '--io-model', 'loop', '-w', '256K'], 'unused.html')) as unknown as {
      report: string | null;
      scenarios: {
        workload: string;
        objective: string;
        ranking: { config: { batch: string | number; ioModel: string; bufferSize?: number } }[];
        recommendation: { cli: string };
      }[];
    };
    assert.equal(document.report, null);
    for (const scenario of document.scenarios) {
      assert.ok(scenario.ranking.every((entry) => entry.config.ioModel === 'loop'));
      assert.deepEqual(
        new Set(scenario.ranking.map((entry) => entry.config.bufferSize ?? 'auto')),
        new Set(['auto', 262144]),
        'the sizes asked for, and autotuning (the default) besides',
      );
    }
    assert.deepEqual(
      document.scenarios.map((scenario) => [scenario.workload, scenario.objective]),
      [
        ['stream', 'throughput'],
        ['rr', 'rps'],
        ['msg', 'rps'],
      ],
    );
    const msg = document.scenarios[2]!;
    assert.ok(
      msg.ranking.some((entry) => entry.config.batch === 1) && msg.ranking.some((entry) => entry.config.batch === 'auto'),
      'coalescing is a tuned knob',
    );
    assert.match(msg.recommendation.cli, /^socktune msg -c HOST --size 64 -C 2 --echo --depth \d+/);
  },
);

test('tune without --quick: the full grid, every configuration at least once, within --budget', { timeout: 120_000 }, async () => {
  const result = await runCli(
    ['tune', '--json', '--no-report', '--budget', '2s', '--duration-per-trial', '0.05', '--workload', 'stream'],
    110_000,
  );
  assert.equal(result.code, 0, result.stderr);
  const document = JSON.parse(result.stdout) as {
    options: { quick: boolean };
    scenarios: { ranking: { samples: number[]; lastRound: number }[]; trials: unknown[] }[];
  };
  assertSchema(document);
  assert.equal(document.options.quick, false);
  const [scenario] = document.scenarios;
  assert.equal(scenario!.ranking.length, 18, 'buffer sizes × I/O models, all measured');
  // A budget this small leaves time for one pass only: no configuration was repeated or dropped.
  assert.ok(scenario!.ranking.every((entry) => entry.samples.length === 1 && entry.lastRound === 1));
  assert.equal(scenario!.trials.length, 18);
});

test('tune against a port where nothing listens stops at the first trial with the cause, exit 3 like every client command', async () => {
  const closedPort = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const run = await runCli(['tune', '-c', '127.0.0.1', '-p', String(closedPort), '--quick', '--no-report'], 60_000);
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /SOCKTUNE_ERR_REFUSED: connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  assert.doesNotMatch(run.stdout, /trials in/);
});

test('tune refuses a grid it cannot sweep, naming the flag', async () => {
  const model = await runCli(['tune', '--quick', '--no-report', '--io-model', 'loop,fibers']);
  assert.equal(model.code, 2);
  assert.match(model.stderr, /--io-model takes one of loop, workers, thread-per-conn, io-uring, got "fibers"/);
  const raw = await runCli(['tune', '--raw', '-c', '127.0.0.1:9', '--io-model', 'workers']);
  assert.equal(raw.code, 2);
  assert.match(raw.stderr, /--raw tunes only this client.*drop --io-model/);
});

test('a trial that reached its server but completed no request counts as failed, not as an unreachable server (exit 5, not 3)', async (t) => {
  // Accepts and never answers: every rr trial connects, sends, and sees no response in its window.
  const held: net.Socket[] = [];
  const silent = net.createServer((socket) => held.push(socket.on('error', () => {})));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of held) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as net.AddressInfo;
  const args = ['--raw', '-c', `127.0.0.1:${port}`, '--objective', 'p99', '--quick', '--duration-per-trial', '0.05', '--conns', '1'];
  const run = await runCli(['tune', ...args, '--no-report'], 110_000);
  assert.equal(run.code, 5, run.stderr);
  assert.match(run.stdout, /no configuration completed a trial/);
  assert.match(
    run.stderr,
    /trial\(s\) failed: SOCKTUNE_ERR_TIMEOUT: nothing was measured for buf auto · nodelay · depth 1: no request completed/,
  );
});
