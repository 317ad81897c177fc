/**
 * Figures as data: functions from rows to Vega-Lite specs (line chart with one line per series, scatter
 * with a least-squares fit line, a pair of overlaid histograms), a caption carrying the statistic, its
 * bootstrap interval and the random-direction null, and rendering to SVG (vega's headless View.toSVG) and
 * PNG (@resvg/resvg-js with a bundled DejaVu Sans, so text renders without system fonts).
 *
 * vega/vega-lite are pinned to major 5: their 6.x releases are ESM-only with top-level await, which a
 * CommonJS project cannot require().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';

export type Row = Record<string, string | number | boolean | null>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type VegaLiteSpec = Record<string, any>;

export interface FigureSpec {
  /** File stem: <name>.csv, <name>.svg, <name>.png, <name>.vl.json. */
  name: string;
  rows: Row[];
  spec: VegaLiteSpec;
}

export interface Caption {
  /** Name of the statistic, e.g. "r (per sample)". */
  statistic: string;
  value: number;
  /** Bootstrap interval. */
  ci?: { lo: number; hi: number; level?: number; reps?: number };
  /** Random-direction null: mean |stat| and 97.5th percentile of |stat| over `count` norm-matched directions. */
  null?: { meanAbs: number; p975: number; count?: number };
  /** Anything else the reader needs (n, layer, model). */
  note?: string;
}

const FONT = 'DejaVu Sans';
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

/** Caption lines: "r = 0.91, 95% bootstrap CI [0.85, 0.95]" / "random-direction null (n=20): mean |r| 0.08, 97.5th pct 0.21". */
export function captionLines(c: Caption): string[] {
  let first = `${c.statistic} = ${fmt(c.value)}`;
  if (c.ci) first += `, ${Math.round((c.ci.level ?? 0.95) * 100)}% bootstrap CI [${fmt(c.ci.lo)}, ${fmt(c.ci.hi)}]${c.ci.reps ? ` (${c.ci.reps} resamples)` : ''}`;
  const lines = [first];
  if (c.null) lines.push(`random-direction null${c.null.count ? ` (${c.null.count} directions)` : ''}: mean |${c.statistic.split(' ')[0]}| ${fmt(c.null.meanAbs)}, 97.5th percentile ${fmt(c.null.p975)}`);
  if (c.note) lines.push(c.note);
  return lines;
}

interface Common {
  title: string;
  caption?: Caption | string[];
  width?: number;
  height?: number;
}

function base(rows: Row[], o: Common): VegaLiteSpec {
  const subtitle = o.caption === undefined ? undefined : Array.isArray(o.caption) ? o.caption : captionLines(o.caption);
  return {
    $schema: SCHEMA,
    title: { text: o.title, ...(subtitle ? { subtitle, subtitleFontSize: 11, subtitleColor: '#333' } : {}), anchor: 'start' },
    width: o.width ?? 420,
    height: o.height ?? 280,
    background: 'white',
    data: { values: rows },
    config: { font: FONT, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 } },
  };
}

function checkFields(rows: Row[], fields: (string | undefined)[], what: string): void {
  if (rows.length === 0) throw new PersonaError(`${what}: no rows to plot`);
  for (const f of fields) if (f !== undefined && !rows.some((r) => f in r)) throw new PersonaError(`${what}: no row has field '${f}'`, { field: f });
}

/** One line per `series` value over `x`; optional error band from `lo`/`hi` fields. */
export function lineChart(
  rows: Row[],
  o: Common & { x: string; y: string; series?: string; xTitle?: string; yTitle?: string; seriesTitle?: string; lo?: string; hi?: string; xType?: 'quantitative' | 'ordinal' },
): VegaLiteSpec {
  checkFields(rows, [o.x, o.y, o.series, o.lo, o.hi], 'line chart');
  const x = { field: o.x, type: o.xType ?? 'quantitative', title: o.xTitle ?? o.x, ...(o.xType === 'ordinal' ? {} : { scale: { zero: false } }) };
  const color = o.series ? { field: o.series, type: 'nominal', title: o.seriesTitle ?? o.series } : undefined;
  const layers: VegaLiteSpec[] = [];
  if (o.lo && o.hi) layers.push({ mark: { type: 'area', opacity: 0.15 }, encoding: { x, y: { field: o.lo, type: 'quantitative' }, y2: { field: o.hi }, ...(color ? { color } : {}) } });
  layers.push({ mark: { type: 'line', point: true }, encoding: { x, y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y }, ...(color ? { color } : {}) } });
  return { ...base(rows, o), layer: layers };
}

/** Points of `y` against `x` (coloured by `color`) and the least-squares line through all of them. */
export function scatterWithFit(rows: Row[], o: Common & { x: string; y: string; color?: string; xTitle?: string; yTitle?: string; colorTitle?: string }): VegaLiteSpec {
  checkFields(rows, [o.x, o.y, o.color], 'scatter');
  const x = { field: o.x, type: 'quantitative', title: o.xTitle ?? o.x, scale: { zero: false } };
  const y = { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: { zero: false } };
  return {
    ...base(rows, o),
    layer: [
      { mark: { type: 'point', filled: true, opacity: 0.75 }, encoding: { x, y, ...(o.color ? { color: { field: o.color, type: 'nominal', title: o.colorTitle ?? o.color } } : {}) } },
      { transform: [{ regression: o.y, on: o.x }], mark: { type: 'line', color: '#444', strokeDash: [6, 3] }, encoding: { x, y } },
    ],
  };
}

/** Overlaid histograms of `value`, one per `group` value (e.g. trait samples vs Normal samples). */
export function histogramPair(rows: Row[], o: Common & { value: string; group: string; bins?: number; xTitle?: string; groupTitle?: string }): VegaLiteSpec {
  checkFields(rows, [o.value, o.group], 'histogram');
  const groups = new Set(rows.map((r) => r[o.group]));
  if (groups.size < 2) throw new PersonaError(`histogram pair: field '${o.group}' has ${groups.size} group(s), need 2 or more`, { field: o.group });
  return {
    ...base(rows, o),
    mark: { type: 'bar', opacity: 0.55, binSpacing: 0 },
    encoding: {
      x: { field: o.value, type: 'quantitative', bin: { maxbins: o.bins ?? 30 }, title: o.xTitle ?? o.value },
      y: { aggregate: 'count', type: 'quantitative', stack: null, title: 'samples' },
      color: { field: o.group, type: 'nominal', title: o.groupTitle ?? o.group },
    },
  };
}

/** SVG text of a Vega-Lite spec, rendered headlessly. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  // Loaded lazily: vega is large and most commands never plot.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vega = require('vega') as typeof import('vega');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vl = require('vega-lite') as typeof import('vega-lite');
  let compiled;
  try {
    compiled = vl.compile(spec as never).spec;
  } catch (e) {
    throw new PersonaError(`invalid Vega-Lite spec: ${(e as Error).message}`);
  }
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function fontFiles(): string[] {
  return [require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'), require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf')];
}

/** PNG bytes of an SVG at `scale`× its size, white background, with the bundled font only (same output on every machine). */
export function renderPng(svg: string, scale = 2): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: { fontFiles: fontFiles(), loadSystemFonts: false, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
  return r.render().asPng();
}

export function rowsToCsv(rows: Row[]): string {
  const columns: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  return stringify(rows, { header: true, columns, cast: { boolean: (b) => (b ? 'true' : 'false') } });
}

/** Writes <dir>/<name>.csv, .vl.json, .svg and .png, each atomically; returns their paths. */
export async function writeFigure(dir: string, fig: FigureSpec): Promise<{ csv: string; spec: string; svg: string; png: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(fig.name)) throw new PersonaError(`figure name '${fig.name}' must be a plain file stem`);
  fs.mkdirSync(dir, { recursive: true });
  const out = {
    csv: path.join(dir, `${fig.name}.csv`),
    spec: path.join(dir, `${fig.name}.vl.json`),
    svg: path.join(dir, `${fig.name}.svg`),
    png: path.join(dir, `${fig.name}.png`),
  };
  const svg = await renderSvg(fig.spec);
  writeFileAtomic(out.csv, rowsToCsv(fig.rows));
  writeFileAtomic(out.spec, JSON.stringify(fig.spec, null, 2) + '\n');
  writeFileAtomic(out.svg, svg);
  writeFileAtomic(out.png, renderPng(svg));
  return out;
}
