/** Cheap studies registered for the experiment tests: results are pure functions of the settings. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { registerStudy } from '../../../lib/experiment/study';
import { lineChart } from '../../../lib/plot';

export const ARITH = 'test/arith';

/** Cells compute a few numbers from (a, b, seed); `delay_ms` makes them slow enough to interrupt. */
registerStudy(ARITH, {
  description: 'test study: arithmetic on the settings',
  schema: z
    .object({
      a: z.number().int().default(1).describe('first operand'),
      b: z.number().default(2).describe('second operand'),
      dataset: z.string().optional().describe('a file that must exist'),
      delay_ms: z.number().int().min(0).default(0).describe('sleep per cell'),
      max_a: z.number().int().default(100).describe('validation bound on a'),
    })
    .strict(),
  pathFields: ['dataset'],
  validate(config, ctx) {
    ctx.requireFiles('dataset', 'dataset file');
    for (const { value, keyPath } of ctx.valuesOf('a')) if ((value as number) > (config.product[0].max_a as number)) ctx.fail(keyPath, `a = ${value} is beyond max_a`);
  },
  async runCell(cell, ctx) {
    if (cell.delay_ms) await new Promise((r) => setTimeout(r, cell.delay_ms as number));
    const lines = cell.dataset ? fs.readFileSync(ctx.resolvePath(cell.dataset as string), 'utf8').trim().split('\n').length : 0;
    const squared = await ctx.cache.getOrCompute('square', { a: cell.a }, () => (cell.a as number) ** 2);
    fs.writeFileSync(path.join(ctx.dir, 'note.txt'), `cell ${ctx.id}\n`);
    return { sum: (cell.a as number) + (cell.b as number), product: (cell.a as number) * (cell.b as number), squared, lines, nested: { seed: ctx.config.seed } };
  },
  summarize(results) {
    const rows = results.map((r) => ({ a: r.settings.a as number, b: r.settings.b as number, sum: r.result.sum as number }));
    return {
      summary: { total: results.reduce((s, r) => s + (r.result.sum as number), 0), n: results.length },
      figures: [{ name: 'sum', rows, spec: lineChart(rows, { title: 'sum', x: 'a', y: 'sum', series: 'b', caption: ['test caption'] }) }],
    };
  },
});

export const READS_MODEL = 'test/reads-model';

/** Cells read `width` from the checkpoint's config.json, so retraining the model in place changes the result. */
registerStudy(READS_MODEL, {
  description: 'test study: reads a checkpoint config',
  schema: z.object({ model: z.string().describe('checkpoint directory'), k: z.number().default(1).describe('a sweep axis') }).strict(),
  pathFields: ['model'],
  runCell(cell, ctx) {
    const cfg = JSON.parse(fs.readFileSync(path.join(ctx.resolvePath(cell.model as string), 'config.json'), 'utf8'));
    return { width: cfg.width * (cell.k as number) };
  },
  summarize(results) {
    return { summary: { widths: results.map((r) => r.result.width as number).sort((a, b) => a - b) } };
  },
});
