/**
 * `danling report` and `danling serve` in a real browser: headless Chromium (Debian's `chromium`,
 * installed by .ci/run) driven by playwright-core. The page of the fixture runs loads with no
 * console errors and no network requests, draws one uPlot chart per tag with a curve per run,
 * one table row per run and a parallel-coordinates line per scored run; the live page picks up
 * a run written while it is open. Screenshots go to .tmp/artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer } from '../../src/cli/serve.js';
import { cli, fixtures, type Fixtures } from './fixtures.js';

const artifacts = new URL('../../.tmp/artifacts/', import.meta.url).pathname;

/** Chromium's executable: $CHROMIUM, or chromium on PATH. Missing is a failure, not a skip. */
const chromiumPath = (): string => {
  const fromEnv = process.env['CHROMIUM'];
  if (fromEnv !== undefined && existsSync(fromEnv)) return fromEnv;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch {
      // not this one
    }
  }
  throw new Error(
    'the report tests need Chromium: apt-get install -y chromium (.ci/run installs it), or set CHROMIUM=/path/to/chrome',
  );
};

let f: Fixtures;
let browser: Browser;
let dir = '';
beforeAll(async () => {
  f = await fixtures();
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  dir = await mkdtemp(join(tmpdir(), 'danling-report-'));
  await mkdir(artifacts, { recursive: true });
}, 120_000);
afterAll(async () => {
  await browser.close();
});

/** Opens a page, recording console errors, page errors and every request that is not file:. */
const open = async (url: string): Promise<{ page: Page; errors: string[]; requests: string[] }> => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) requests.push(r.url());
  });
  await page.goto(url);
  return { page, errors, requests };
};

/** Per tag, how many of the runs have a curve for it: read from the metrics files directly. */
const expectedCurves = async (runs: readonly string[]): Promise<Record<string, number>> => {
  const count: Record<string, number> = {};
  for (const run of runs) {
    const tags = new Set<string>();
    for (const line of (await readFile(join(run, 'metrics.jsonl'), 'utf8')).split('\n')) {
      if (line === '') continue;
      const row = JSON.parse(line) as { split: string; metrics: Record<string, unknown> };
      for (const [k, v] of Object.entries(row.metrics))
        if (typeof v === 'number') tags.add(`${row.split}/${k}`);
    }
    for (const t of tags) count[t] = (count[t] ?? 0) + 1;
  }
  return count;
};

const charts = (page: Page): Promise<Record<string, number>> =>
  page.evaluate(() => {
    const w = globalThis as unknown as {
      danlingCharts: { danlingTag: string; series: unknown[] }[];
    };
    return Object.fromEntries(w.danlingCharts.map((u) => [u.danlingTag, u.series.length - 1]));
  });

describe('danling report', () => {
  it('writes one self-contained page: charts per tag, runs overlaid, a runs table', async () => {
    const out = join(dir, 'report.html');
    const r = await cli(['report', f.root, '-o', out]);
    expect(r.code, r.err).toBe(0);
    const runs = [f.a, f.b, f.killed, f.sigterm, f.stopped];
    const want = await expectedCurves(runs);
    expect(r.out).toBe(`${out}: 5 runs, ${Object.keys(want).length} charts\n`);
    const html = await readFile(out, 'utf8');
    // Nothing to fetch: no script or style by URL (uPlot's licence comment names its repository).
    expect(html).not.toMatch(/<script[^>]+src=|<link(?![^>]+href="data:)[^>]+href=/);
    expect(html.match(/https?:\/\/[^\s"'<>)]+/g)).toEqual([
      'https://github.com/leeoniya/uPlot',
      'http://www.w3.org/2000/svg',
    ]);

    const { page, errors, requests } = await open(`file://${out}`);
    expect(await charts(page)).toEqual(want);
    expect(want['train/loss']).toBe(5);
    expect(await page.locator('.uplot').count()).toBe(Object.keys(want).length);
    const rows = page.locator('#runs tbody tr');
    expect(await rows.count()).toBe(5);
    const text = await page.locator('#runs').innerText();
    for (const s of [
      'iris-a',
      'iris-b',
      'iris-killed',
      'iris-stopped',
      'crashed',
      'interrupted',
      'finished',
    ])
      expect(text).toContain(s);
    const headers = await page.locator('#runs thead th').allInnerTexts();
    expect(headers).toEqual(
      expect.arrayContaining(['optim.lr', 'model.hidden', 'epochEnd', 'runName']),
    );
    // Parallel coordinates: the numeric keys that differ; every run has a score.
    expect(await page.locator('#parallel-svg polyline.run-line').count()).toBe(5);
    expect(await page.locator('#parallel-svg text.axis').allTextContents()).toEqual([
      'epochEnd',
      'optim.lr',
      'saveInterval',
      'best val/accuracy (max)',
    ]);
    await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('exits 2 without -o or without runs', async () => {
    expect((await cli(['report', f.root])).err).toContain(
      'danling report: expected -o report.html',
    );
    expect((await cli(['report', '-o', join(dir, 'x.html')])).code).toBe(2);
    expect((await cli(['report', 'nope', '-o', join(dir, 'x.html'), '--root', f.root])).code).toBe(
      2,
    );
  });
});

describe('danling serve', () => {
  it('serves the page live on 127.0.0.1 and picks up a run written while it is open', async () => {
    const root = join(dir, 'live');
    await mkdir(root);
    await cp(f.a, join(root, relative(f.root, f.a)), { recursive: true });
    const { server, url } = await startServer(root, 0);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const { page, errors } = await open(url);
      expect(await page.locator('#runs tbody tr').count()).toBe(1);
      expect((await charts(page))['train/loss']).toBe(1);
      await cp(f.b, join(root, relative(f.root, f.b)), { recursive: true });
      await page.waitForFunction(
        () =>
          (
            globalThis as unknown as {
              document: { querySelectorAll: (s: string) => { length: number } };
            }
          ).document.querySelectorAll('#runs tbody tr').length === 2,
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect((await charts(page))['train/loss']).toBe(2);
      const post = await fetch(url, { method: 'POST' });
      expect(post.status).toBe(405);
      expect((await fetch(`${url}../etc/passwd`)).status).toBe(404);
      await page.screenshot({ path: join(artifacts, 'serve.png') });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
