/**
 * Example study "logit-lens/steer-norm": how much does adding coef · (a random unit direction) to the
 * residual stream at layer L change the next-token distribution? One cell = (layer, coef, direction seed);
 * it reports the mean KL(base ‖ steered) over positions, the mean L2 change of the logits and the fraction
 * of positions whose top-1 token is unchanged. Small enough to run on the tiny test checkpoint; it shows
 * every hook a paper study uses (schema, validation against the model, shared model, cache, summary, figure).
 */
import { readValues } from '../../backend/read';
import * as fs from 'node:fs';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { z } from 'zod';
import { checkpointFingerprint } from '../../io/fingerprint';
import { Model } from '../../model/checkpoint';
import { readModelConfig } from '../../model/config';
import { POSITIONS, interventionHooks, steer } from '../../model/interventions';
import { bootstrapCI, gaussianSampler, randomDirection, spearman } from '../../persona/stats';
import { lineChart } from '../../plot';
import { sha256Hex } from '../hash';
import { CellResult, registerStudy } from '../study';

export const steerNormSchema = z
  .object({
    model: z.string().describe('Checkpoint directory (Hugging Face layout), relative to the config file'),
    tokens: z.array(z.number().int().min(0)).min(1).default([1, 17, 42, 99, 7, 3, 120, 12]).describe('Token ids of the probe sequence'),
    layer: z.number().int().min(0).default(1).describe('Persona-vector layer L (hidden_states[L], output of decoder layer L−1); 0..num_layers'),
    coef: z.number().default(4).describe('Steering coefficient: the added vector is coef · a random unit direction'),
    direction_seed: z.number().int().min(0).default(0).describe('Seed of the random direction'),
    positions: z.enum(POSITIONS as [string, ...string[]]).default('all').describe('Where the vector is added: all | prompt | response'),
  })
  .strict();

type Cell = z.infer<typeof steerNormSchema>;
interface Result extends Record<string, unknown> {
  kl: number;
  logit_change: number;
  top1_agreement: number;
}

function logSoftmaxRows(logits: Float32Array, T: number, V: number): Float64Array {
  const out = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) out[t * V + v] = logits[t * V + v] - lse;
  }
  return out;
}

const argmax = (a: ArrayLike<number>, from: number, n: number) => {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[from + i] > a[from + best]) best = i;
  return best;
};

registerStudy<Cell, Result>('logit-lens/steer-norm', {
  description: 'Change of next-token logits when a random unit direction × coef is added at a layer (example study)',
  schema: steerNormSchema,
  pathFields: ['model'],
  validate(_config, ctx) {
    ctx.requireFiles('model', 'model directory');
    for (const { value } of ctx.valuesOf('model')) {
      const cfg = readModelConfig(ctx.resolvePath(String(value)));
      for (const l of ctx.valuesOf('layer'))
        if (typeof l.value === 'number' && l.value > cfg.numLayers)
          ctx.fail(l.keyPath, `layer ${l.value} is beyond the model (${String(value)} has ${cfg.numLayers} decoder layers: layers 0..${cfg.numLayers})`);
      for (const t of ctx.valuesOf('tokens')) {
        const bad = (t.value as number[] | undefined)?.find((id) => id >= cfg.vocabSize);
        if (bad !== undefined) ctx.fail(t.keyPath, `token id ${bad} is beyond the vocabulary of ${String(value)} (${cfg.vocabSize})`);
      }
    }
  },
  async runCell(cell, ctx) {
    const dir = ctx.resolvePath(cell.model);
    const model = await ctx.shared(`model:${dir}`, () => Model.load(dir), (m) => void m.then((x) => x.dispose(), () => undefined));
    const { vocabSize: V, hiddenSize: H, numLayers: N } = model.config;
    const T = cell.tokens.length;
    const logitsOf = async (hooks?: ReturnType<typeof interventionHooks>): Promise<number[]> => {
      const out = model.forward({ ids: [cell.tokens] }, { hooks });
      try {
        return Array.from(await readValues(out.logits!));
      } finally {
        out.logits!.dispose();
      }
    };
    // The unsteered logits depend only on the model and the tokens: shared by every cell through the cache.
    const base = Float32Array.from(await ctx.cache.getOrCompute('logits', { model: checkpointFingerprint(dir), tokens: cell.tokens }, () => logitsOf()));
    const direction = randomDirection(H, 1, gaussianSampler(seedrandom(`steer-norm:${cell.direction_seed}`)));
    const steered = Float32Array.from(await logitsOf(interventionHooks([steer(direction, cell.layer, cell.coef, cell.positions as never, N)], model.config)));
    const lb = logSoftmaxRows(base, T, V);
    const ls = logSoftmaxRows(steered, T, V);
    let kl = 0;
    let change = 0;
    let agree = 0;
    for (let t = 0; t < T; t++) {
      let d2 = 0;
      for (let v = 0; v < V; v++) {
        const i = t * V + v;
        kl += Math.exp(lb[i]) * (lb[i] - ls[i]);
        d2 += (steered[i] - base[i]) ** 2;
      }
      change += Math.sqrt(d2);
      if (argmax(base, t * V, V) === argmax(steered, t * V, V)) agree++;
    }
    return { kl: kl / T, logit_change: change / T, top1_agreement: agree / T };
  },
  summarize(results: CellResult<Cell, Result>[]) {
    // Mean over direction seeds for each (layer, coef).
    const groups = new Map<string, { layer: number; coef: number; kl: number[]; change: number[] }>();
    for (const r of results) {
      const k = `${r.settings.layer}|${r.settings.coef}`;
      const g = groups.get(k) ?? { layer: r.settings.layer, coef: r.settings.coef, kl: [], change: [] };
      g.kl.push(r.result.kl);
      g.change.push(r.result.logit_change);
      groups.set(k, g);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rows = [...groups.values()]
      .map((g) => ({ layer: g.layer, coef: g.coef, kl: mean(g.kl), logit_change: mean(g.change), directions: g.kl.length }))
      .sort((a, b) => a.coef - b.coef || a.layer - b.layer);
    // Per layer: does the effect grow with |coef|?
    const monotonic: Record<string, boolean> = {};
    for (const layer of [...new Set(rows.map((r) => r.layer))]) {
      const line = rows.filter((r) => r.layer === layer).sort((a, b) => Math.abs(a.coef) - Math.abs(b.coef));
      monotonic[String(layer)] = line.every((r, i) => i === 0 || r.kl >= line[i - 1].kl - 1e-9);
    }
    const absCoef = results.map((r) => Math.abs(r.settings.coef));
    const kls = results.map((r) => r.result.kl);
    const rho = spearman(absCoef, kls);
    let ci: { lo: number; hi: number } | undefined;
    if (results.length >= 4 && new Set(absCoef).size > 1) {
      try {
        ci = bootstrapCI((idx) => spearman(idx.map((i) => absCoef[i]), idx.map((i) => kls[i])), results.length, { seed: 'steer-norm', reps: 500 });
      } catch {
        ci = undefined; // too few distinct cells for a defined statistic on most resamples
      }
    }
    const caption = {
      statistic: 'Spearman ρ(|coef|, KL)',
      value: rho,
      ...(ci ? { ci: { ...ci, level: 0.95, reps: 500 } } : {}),
      note: `n = ${results.length} cells; the steering directions are random, so this study is itself the random-direction null`,
    };
    return {
      summary: {
        spearman_abs_coef_kl: rho,
        spearman_ci: ci ?? null,
        monotonic_in_abs_coef: monotonic,
        max_kl: Math.max(...kls),
        by_layer_coef: rows,
      },
      figures: [
        {
          name: 'kl_by_layer',
          rows,
          spec: lineChart(rows, {
            title: 'Logit change under random-direction steering',
            x: 'layer',
            xType: 'ordinal',
            y: 'kl',
            series: 'coef',
            xTitle: 'Layer L (hidden_states index)',
            yTitle: 'KL(base ‖ steered), nats',
            seriesTitle: 'coef',
            caption,
          }),
        },
      ],
    };
  },
});
