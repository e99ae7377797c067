/**
 * `danling report <runs...> -o report.html`: one self-contained HTML page (uPlot's script and
 * style inlined, the data embedded, no network): metric curves per tag with the runs overlaid,
 * a runs table, and parallel coordinates of the changed config keys against the best score.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { writeFileAtomic } from '../effects/storage/atomic.js';
import { readJsonl } from '../effects/storage/jsonl.js';
import { getIn } from '../state/config/merge.js';
import { isPlainObject, type Json } from '../state/Json.js';
import { runCommand, usageError, type CommandDef, type CommandIo } from './args.js';
import { leafDiff, readRun, selectRuns, showProgress, type RunInfo } from './runDirs.js';

export const REPORT: CommandDef = {
  name: 'report',
  usage: 'danling report <run|projectRoot ...> -o report.html [--root projectRoot] [--title T]',
  help: `Writes one self-contained HTML file (no network: the chart library uPlot is inlined) with
  - metric curves: one chart per tag (split/metric, from each run's metrics.jsonl) against the
    step, every run overlaid;
  - a runs table: name, id, status, progress, best and latest score, and every config key that
    differs between the runs;
  - parallel coordinates of the numeric changed config keys against the best score.
Each argument is a run (a run dir, a name, a name-id folder, an id prefix; searched under --root,
default: experiments) or a folder of runs (all of them). Open the file in any browser, or attach
it to a CI artefact.`,
  flags: { values: ['out', 'root', 'title'], aliases: { o: 'out' } },
};

/** Config paths never shown as "changed": they differ for every run. */
const IGNORED = new Set(['experimentId', 'runId', 'timestamp', 'dir', 'projectRoot', 'checkpoint']);

/** One run in the report. */
export interface ReportRun {
  readonly label: string;
  readonly dir: string;
  readonly name: string;
  readonly id: string;
  readonly started: string;
  readonly status: string;
  readonly progress: string;
  readonly best: number | null;
  readonly latest: number | null;
  readonly config: Readonly<Record<string, Json | null>>;
  /** Per tag: steps and values, sorted by step. */
  readonly metrics: Readonly<Record<string, readonly [number[], number[]]>>;
}

/** What the page shows. */
export interface ReportData {
  readonly title: string;
  readonly generated: string;
  readonly score: string;
  readonly keys: readonly string[];
  readonly tags: readonly string[];
  readonly runs: readonly ReportRun[];
}

/** The metric curves of a run dir: `split/name` -> [steps, values], one value per step. */
export const readMetricCurves = async (
  dir: string,
): Promise<Record<string, [number[], number[]]>> => {
  const read = await readJsonl(path.join(dir, 'metrics.jsonl'));
  if (E.isLeft(read)) return {};
  const byTag = new Map<string, Map<number, number>>();
  for (const row of read.right.values) {
    if (!isPlainObject(row) || typeof row['step'] !== 'number' || !isPlainObject(row['metrics']))
      continue;
    const split = typeof row['split'] === 'string' ? row['split'] : '';
    for (const [name, v] of Object.entries(row['metrics'])) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const tag = split === '' ? name : `${split}/${name}`;
      const m = byTag.get(tag) ?? new Map<number, number>();
      m.set(row['step'], v);
      byTag.set(tag, m);
    }
  }
  const out: Record<string, [number[], number[]]> = {};
  for (const [tag, m] of byTag) {
    const xs = [...m.keys()].sort((a, b) => a - b);
    out[tag] = [xs, xs.map((x) => m.get(x) as number)];
  }
  return out;
};

/** Reads the runs into the page's data. */
export const buildReportData = async (
  dirs: readonly string[],
  title: string,
): Promise<ReportData> => {
  const infos: RunInfo[] = await Promise.all(dirs.map(readRun));
  const keys = new Set<string>();
  for (const r of infos.slice(1))
    for (const c of leafDiff(infos[0]?.config, r.config))
      if (!IGNORED.has(c.path.split('.')[0] ?? '')) keys.add(c.path);
  const sortedKeys = [...keys].sort();
  const labels = new Map<string, number>();
  for (const r of infos)
    labels.set(`${r.name} ${r.id}`, (labels.get(`${r.name} ${r.id}`) ?? 0) + 1);
  const runs = await Promise.all(
    infos.map(async (r) => {
      const base = `${r.name} ${r.id}`;
      return {
        label: (labels.get(base) ?? 0) > 1 ? `${base} ${r.timestamp}` : base,
        dir: r.dir,
        name: r.name,
        id: r.id,
        started: r.started,
        status: r.status,
        progress: showProgress(r.progress),
        best: r.best?.value ?? null,
        latest: r.latest?.value ?? null,
        config: Object.fromEntries(sortedKeys.map((k) => [k, getIn(r.config, k) ?? null])),
        metrics: await readMetricCurves(r.dir),
      };
    }),
  );
  const tags = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const first = infos.find((r) => r.best !== undefined)?.best;
  return {
    title,
    generated: new Date().toISOString(),
    score: first === undefined ? 'score' : `${first.split ?? '?'}/${first.name} (${first.mode})`,
    keys: sortedKeys,
    tags,
    runs,
  };
};

const uplotFile = (name: string): Promise<string> =>
  readFile(createRequire(import.meta.url).resolve(`uplot/dist/${name}`), 'utf8');

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON safe inside a script element. */
const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** The page's own script: builds the charts, the table and the parallel coordinates. */
const PAGE_SCRIPT = String.raw`
(function () {
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  var charts = [];
  window.danlingCharts = charts;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(v) { return v === null || v === undefined ? '-' : v.toFixed(4); }
  function render(data) {
    document.getElementById('title').textContent = data.title;
    document.getElementById('generated').textContent = 'generated ' + data.generated + ' · ' + data.runs.length + ' runs · score ' + data.score;
    // The runs table.
    var table = document.getElementById('runs');
    table.textContent = '';
    var head = el('tr');
    ['', 'run', 'started', 'status', 'progress', 'best', 'latest'].concat(data.keys).forEach(function (h) { head.appendChild(el('th', {}, h)); });
    var thead = el('thead'); thead.appendChild(head); table.appendChild(thead);
    var tbody = el('tbody');
    data.runs.forEach(function (r, i) {
      var tr = el('tr', { title: r.dir });
      var sw = el('td'); sw.appendChild(el('span', { class: 'swatch', style: 'background:' + COLORS[i % COLORS.length] })); tr.appendChild(sw);
      [r.label, r.started, r.status, r.progress, num(r.best), num(r.latest)].forEach(function (c, j) { tr.appendChild(el('td', j === 2 ? { class: 'status-' + r.status } : {}, c)); });
      data.keys.forEach(function (k) { tr.appendChild(el('td', {}, r.config[k] === null ? '(unset)' : JSON.stringify(r.config[k]))); });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    // The charts: one per tag, every run that has the tag overlaid (the table is the legend).
    charts.forEach(function (u) { u.destroy(); });
    charts.length = 0;
    var box = document.getElementById('charts');
    box.textContent = '';
    data.tags.forEach(function (tag) {
      var tables = [], series = [{ label: 'step' }];
      data.runs.forEach(function (r, i) {
        var m = r.metrics[tag];
        if (!m || m[0].length === 0) return;
        tables.push([m[0], m[1]]);
        series.push({ label: r.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: m[0].length < 40 } });
      });
      if (tables.length === 0) return;
      var aligned = tables.length === 1 ? tables[0] : uPlot.join(tables);
      var div = el('div', { class: 'chart', 'data-tag': tag });
      box.appendChild(div);
      var u = new uPlot({ title: tag, width: 520, height: 240, scales: { x: { time: false } }, series: series, axes: [{ label: 'step' }, {}], legend: { show: false } }, aligned, div);
      u.danlingTag = tag;
      charts.push(u);
    });
    // Parallel coordinates: numeric changed keys, then the best score.
    var par = document.getElementById('parallel');
    par.textContent = '';
    var axes = data.keys.filter(function (k) { return data.runs.every(function (r) { return typeof r.config[k] === 'number'; }); });
    var runs = data.runs.filter(function (r) { return r.best !== null; });
    if (axes.length === 0 || runs.length < 2) {
      par.appendChild(el('p', { class: 'note' }, 'Parallel coordinates need two runs with a score and a numeric config key that differs between them.'));
      return;
    }
    var cols = axes.map(function (k) { return { name: k, get: function (r) { return r.config[k]; } }; });
    cols.push({ name: 'best ' + data.score, get: function (r) { return r.best; } });
    var W = Math.max(420, 180 * cols.length), H = 260, top = 30, bottom = 30, left = 90, right = 110;
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('id', 'parallel-svg');
    function svgEl(tag, attrs, text) { var e = document.createElementNS(NS, tag); for (var k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
    var xAt = function (j) { return left + (cols.length === 1 ? 0 : j * (W - left - right) / (cols.length - 1)); };
    var scales = cols.map(function (c) {
      var vs = runs.map(c.get), lo = Math.min.apply(null, vs), hi = Math.max.apply(null, vs);
      return function (v) { return hi === lo ? (top + H - bottom) / 2 : H - bottom - (v - lo) / (hi - lo) * (H - top - bottom); };
    });
    cols.forEach(function (c, j) {
      var vs = runs.map(c.get);
      svg.appendChild(svgEl('line', { x1: xAt(j), x2: xAt(j), y1: top, y2: H - bottom, stroke: '#999' }));
      svg.appendChild(svgEl('text', { x: xAt(j), y: top - 10, 'text-anchor': 'middle', class: 'axis' }, c.name));
      svg.appendChild(svgEl('text', { x: xAt(j), y: H - bottom + 16, 'text-anchor': 'middle', class: 'tick' }, num(Math.min.apply(null, vs))));
      svg.appendChild(svgEl('text', { x: xAt(j), y: top + 4, 'text-anchor': 'end', dx: -4, class: 'tick' }, num(Math.max.apply(null, vs))));
    });
    runs.forEach(function (r) {
      var i = data.runs.indexOf(r);
      var pts = cols.map(function (c, j) { return xAt(j) + ',' + scales[j](c.get(r)); }).join(' ');
      var line = svgEl('polyline', { points: pts, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2, class: 'run-line' });
      line.appendChild(svgEl('title', {}, r.label));
      svg.appendChild(line);
    });
    par.appendChild(svg);
  }
  var data = JSON.parse(document.getElementById('danling-data').textContent);
  render(data);
  var live = document.body.getAttribute('data-live');
  if (live) {
    var last = JSON.stringify(data.runs);
    setInterval(function () {
      fetch(live, { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (d) {
        var now = JSON.stringify(d.runs);
        if (now !== last) { last = now; render(d); }
        document.getElementById('generated').setAttribute('data-polled', String(Date.now()));
      }).catch(function () {});
    }, 1000);
  }
})();
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
#generated, .note { color: #666; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; } .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
.status-running { color: #1f77b4; } .status-finished { color: #2ca02c; } .status-crashed { color: #d62728; } .status-interrupted { color: #ff7f0e; }
#charts { display: flex; flex-wrap: wrap; gap: 16px; } .chart { border: 1px solid #eee; padding: 4px; }
#parallel text.axis { font-size: 12px; } #parallel text.tick { font-size: 10px; fill: #666; }
`;

/** The HTML page for `data`; `live` is the URL the page polls for new data (serve). */
export const renderReport = async (
  data: ReportData,
  options: { live?: string } = {},
): Promise<string> => {
  const [js, css] = await Promise.all([uplotFile('uPlot.iife.min.js'), uplotFile('uPlot.min.css')]);
  const inlineJs = (s: string): string => s.replace(/<\/script/gi, '<\\/script');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>${escapeHtml(data.title)}</title>
<style>${css}</style>
<style>${STYLE}</style>
</head>
<body${options.live === undefined ? '' : ` data-live="${escapeHtml(options.live)}"`}>
<h1 id="title"></h1>
<div id="generated"></div>
<h2>Runs</h2>
<table id="runs"></table>
<h2>Metrics</h2>
<div id="charts"></div>
<h2>Config against the best score</h2>
<div id="parallel"></div>
<script type="application/json" id="danling-data">${scriptJson(data)}</script>
<script>${inlineJs(js)}</script>
<script>${inlineJs(PAGE_SCRIPT)}</script>
</body>
</html>
`;
};

/** Resolves report arguments (runs or folders of runs) to run dirs, in order, without repeats. */
export const resolveRunArgs = async (
  args: readonly string[],
  root: string,
  cwd: string,
): Promise<E.Either<string, string[]>> => {
  const dirs: string[] = [];
  for (const a of args) {
    const s = await selectRuns(a, root, { cwd, many: true });
    if (E.isLeft(s)) return s;
    for (const d of s.right) if (!dirs.includes(d)) dirs.push(d);
  }
  return E.right(dirs);
};

export const reportCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(REPORT, argv, io, async ({ positional, flags }) => {
    if (positional.length === 0) return usageError(REPORT, io, 'expected at least one run');
    if (typeof flags['out'] !== 'string') return usageError(REPORT, io, 'expected -o report.html');
    const cwd = io.cwd ?? process.cwd();
    const root = path.resolve(
      cwd,
      typeof flags['root'] === 'string' ? flags['root'] : 'experiments',
    );
    const dirs = await resolveRunArgs(positional, root, cwd);
    if (E.isLeft(dirs)) {
      io.err(`danling report: ${dirs.left}\n`);
      return 2;
    }
    const data = await buildReportData(
      dirs.right,
      typeof flags['title'] === 'string' ? flags['title'] : 'danling report',
    );
    const out = path.resolve(cwd, flags['out']);
    const written = await writeFileAtomic(out, await renderReport(data));
    if (E.isLeft(written)) {
      io.err(`danling report: ${written.left.message}\n`);
      return 1;
    }
    io.out(
      `${out}: ${data.runs.length} run${data.runs.length === 1 ? '' : 's'}, ${data.tags.length} charts\n`,
    );
    return 0;
  });
