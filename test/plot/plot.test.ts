/** Vega-Lite specs from rows, headless SVG, PNG with the bundled font (text must be drawn), atomic figure files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { captionLines, fontFiles, histogramPair, lineChart, renderPng, renderSvg, rowsToCsv, scatterWithFit, writeFigure } from '../../lib/plot';

const lineRows = [1, 2, 3, 4].flatMap((layer) => [0, 5].map((coef) => ({ layer, coef, score: layer * coef, lo: layer * coef - 1, hi: layer * coef + 1 })));
const caption = { statistic: 'r (per sample)', value: 0.9123, ci: { lo: 0.851, hi: 0.953, level: 0.95 }, null: { meanAbs: 0.0812, p975: 0.2111, count: 20 } };

/** Dark pixels of an RGBA render inside a box (fractions of width/height). */
function darkPixels(svg: string, box: [number, number, number, number] = [0, 0, 1, 1]): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require('@resvg/resvg-js');
  const img = new Resvg(svg, { background: 'white', font: { fontFiles: fontFiles(), loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' } }).render();
  const { width: w, height: h, pixels } = img as { width: number; height: number; pixels: Buffer };
  let n = 0;
  for (let y = Math.floor(box[1] * h); y < Math.floor(box[3] * h); y++)
    for (let x = Math.floor(box[0] * w); x < Math.floor(box[2] * w); x++) {
      const i = (y * w + x) * 4;
      if (pixels[i] < 128 && pixels[i + 1] < 128 && pixels[i + 2] < 128) n++;
    }
  return n;
}

test('caption carries the statistic, its bootstrap interval and the random-direction null', () => {
  expect(captionLines(caption)).toEqual([
    'r (per sample) = 0.912, 95% bootstrap CI [0.851, 0.953]',
    'random-direction null (20 directions): mean |r| 0.0812, 97.5th percentile 0.211',
  ]);
  expect(captionLines({ statistic: 'AUROC', value: 1, note: 'n = 40' })).toEqual(['AUROC = 1', 'n = 40']);
});

test('line chart: one line per series, axis titles, legend and caption in the SVG', async () => {
  const spec = lineChart(lineRows, { title: 'Steering', x: 'layer', y: 'score', series: 'coef', xTitle: 'Layer', yTitle: 'Trait score', lo: 'lo', hi: 'hi', caption });
  const svg = await renderSvg(spec);
  expect(svg.startsWith('<svg')).toBe(true);
  for (const text of ['Layer', 'Trait score', 'Steering', 'coef', '95% bootstrap CI [0.851, 0.953]', 'mean |r| 0.0812']) expect(svg).toContain(text);
  // Two series → two line marks with distinct stroke colours, four points each.
  expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(2);
  expect((svg.match(/aria-roledescription="point"/g) ?? []).length).toBe(8);
  const strokes = new Set([...svg.matchAll(/<path[^>]*stroke="(#[0-9a-f]{6})"[^>]*stroke-width="2"/g)].map((m) => m[1]));
  expect(strokes.size).toBe(2);
});

test('scatter with a fit line and histogram pair compile and render', async () => {
  const pts = Array.from({ length: 30 }, (_, i) => ({ x: i, y: 2 * i + 1 + (i % 3), group: i % 2 ? 'trait' : 'normal' }));
  const s = await renderSvg(scatterWithFit(pts, { title: 'Shift', x: 'x', y: 'y', color: 'group', caption }));
  expect((s.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(1); // the fit
  expect((s.match(/aria-roledescription="point"/g) ?? []).length).toBe(30);
  const h = await renderSvg(histogramPair(pts, { title: 'Screening', value: 'y', group: 'group', bins: 10, caption: ['AUROC = 0.97'] }));
  expect(h).toContain('AUROC = 0.97');
  expect(h).toContain('samples');
  expect(() => histogramPair(pts.map((p) => ({ ...p, group: 'one' })), { title: 't', value: 'y', group: 'group' })).toThrow(/need 2 or more/);
  expect(() => lineChart([], { title: 't', x: 'a', y: 'b' })).toThrow(PersonaError);
  expect(() => lineChart(lineRows, { title: 't', x: 'layer', y: 'nope' })).toThrow(/no row has field 'nope'/);
});

test('PNG: text (title, caption, axis labels) is drawn with the bundled font', async () => {
  const spec = lineChart(lineRows, { title: 'Steering', x: 'layer', y: 'score', series: 'coef', caption });
  const svg = await renderSvg(spec);
  const png = renderPng(svg);
  expect(Buffer.from(png.slice(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
  // Same spec without any text: the caption band at the top must lose its ink.
  const bare = await renderSvg({ ...spec, title: undefined, layer: spec.layer.map((l: object) => ({ ...l })), config: { ...spec.config, axis: { labels: false, title: false, ticks: false }, legend: { disable: true } } });
  expect(darkPixels(svg, [0, 0, 1, 0.12])).toBeGreaterThan(500);
  expect(darkPixels(bare, [0, 0, 1, 0.12])).toBeLessThan(50);
  // A bare text element: rendered with the shipped TTF even though system fonts are not loaded.
  expect(darkPixels('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="30" font-family="DejaVu Sans" font-size="24">Layer 16</text></svg>')).toBeGreaterThan(100);
});

test('writeFigure writes CSV, spec, SVG and PNG atomically (no temp files left)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-plot-'));
  const out = await writeFigure(dir, { name: 'fig3', rows: lineRows, spec: lineChart(lineRows, { title: 'T', x: 'layer', y: 'score', series: 'coef' }) });
  expect(fs.readdirSync(dir).sort()).toEqual(['fig3.csv', 'fig3.png', 'fig3.svg', 'fig3.vl.json']);
  expect(fs.readFileSync(out.csv, 'utf8').split('\n')[0]).toBe('layer,coef,score,lo,hi');
  expect(rowsToCsv([{ a: 1, b: true }, { a: 2, c: 'x,y' }])).toBe('a,b,c\n1,true,\n2,,"x,y"\n');
  await expect(writeFigure(dir, { name: '../evil', rows: lineRows, spec: {} })).rejects.toThrow(/plain file stem/);
});
