/**
 * Issue 12: several interventions at once (repeatable --steer FILE[:LAYER[:COEF]] and --ablate FILE[:LAYER|:all],
 * --layer all) equal the library's forward pass with the same list; flags that would be ignored or cancel
 * are refused with one line before any model loads.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { writeSafetensors } from '../../lib/io/safetensors';
import { Model } from '../../lib/model/checkpoint';
import { Intervention, ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { FIXTURE_ROOT, maxAbsDiff } from '../support/hf-parity';
import { runCli } from '../support/cli';

const LLAMA = path.join(FIXTURE_ROOT, 'llama-tiny');
const ORGANISM = path.resolve(__dirname, '../../models/organism');
let tmp: string;
let model: Model;
let N: number;
let H: number;
const TOKENS = [[1, 5, 9, 3, 7]];
/** [N+1, H] vectors with distinct rows, and their files. */
let va: Float32Array, vb: Float32Array, fa: string, fb: string;
const row = (v: Float32Array, L: number) => v.slice(L * H, (L + 1) * H);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-iv-'));
  await useBackend('cpu', () => undefined);
  model = await Model.load(LLAMA);
  N = model.config.numLayers;
  H = model.config.hiddenSize;
  const mk = (seed: number) => Float32Array.from({ length: (N + 1) * H }, (_, i) => Math.sin(i * 0.7 + seed) * 0.8);
  va = mk(1);
  vb = mk(2);
  fa = path.join(tmp, 'a.safetensors');
  fb = path.join(tmp, 'b.safetensors');
  writeSafetensors(fa, { persona_vector: { shape: [N + 1, H], data: va } });
  writeSafetensors(fb, { persona_vector: { shape: [N + 1, H], data: vb } });
});
afterAll(() => {
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function libLogits(ivs: Intervention[]): Promise<number[][]> {
  const out = model.forward({ ids: TOKENS }, { hooks: interventionHooks(ivs, model.config) });
  const l = (await out.logits!.array()) as number[][][];
  tf.dispose(out.logits!);
  return l[0];
}

async function cliLogits(flags: string[]): Promise<number[][]> {
  const out = path.join(tmp, `f${Math.random().toString(36).slice(2)}.json`);
  const r = await runCli(['forward', '--model', LLAMA, '--tokens', JSON.stringify(TOKENS), ...flags, '--json', out]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(fs.readFileSync(out, 'utf8')).logits[0];
}

describe('several interventions at once', () => {
  test('two --steer FILE:LAYER:COEF (other vectors, layers, a negative coefficient) equal the library with both', async () => {
    const cli = await cliLogits(['--steer', `${fa}:1:2`, '--steer', `${fb}:2:-1.5`]);
    const lib = await libLogits([steer(row(va, 1), 1, 2, 'all', N), steer(row(vb, 2), 2, -1.5, 'all', N)]);
    expect(maxAbsDiff(cli, lib)).toBeLessThan(1e-5);
    const plain = await libLogits([]);
    expect(maxAbsDiff(cli, plain)).toBeGreaterThan(1e-3);
  });

  test('the old form --steer FILE --layer L --coef C equals FILE:L:C; defaults fill what a spec omits', async () => {
    const old = await cliLogits(['--steer', fa, '--layer', '2', '--coef', '3']);
    expect(maxAbsDiff(old, await cliLogits(['--steer', `${fa}:2:3`]))).toBe(0);
    expect(maxAbsDiff(old, await cliLogits(['--steer', `${fa}:2`, '--coef', '3']))).toBe(0);
    expect(maxAbsDiff(old, await libLogits([steer(row(va, 2), 2, 3, 'all', N)]))).toBeLessThan(1e-5);
  });

  test('--ablate FILE:all and --ablate FILE --layer all ablate each layer 1..N with its own row', async () => {
    const all = await cliLogits(['--ablate', `${fa}:all`]);
    expect(maxAbsDiff(all, await cliLogits(['--ablate', fa, '--layer', 'all']))).toBe(0);
    const lib = await libLogits(Array.from({ length: N }, (_, i) => ablate(row(va, i + 1), i + 1, N)));
    expect(maxAbsDiff(all, lib)).toBeLessThan(1e-5);
    expect(maxAbsDiff(all, await cliLogits(['--ablate', `${fa}:1`]))).toBeGreaterThan(1e-4);
  });

  test('steer one vector and ablate another at once', async () => {
    const cli = await cliLogits(['--steer', `${fa}:2:2`, '--ablate', `${fb}:all`]);
    const lib = await libLogits([steer(row(va, 2), 2, 2, 'all', N), ...Array.from({ length: N }, (_, i) => ablate(row(vb, i + 1), i + 1, N))]);
    expect(maxAbsDiff(cli, lib)).toBeLessThan(1e-5);
  });
});

describe('ignored or conflicting flags are refused with one line', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['--coef without --steer', () => ['forward', '--model', LLAMA, '--tokens', '[1,2]', '--coef', '2', '--json', 'x.json'], /--coef has no effect without --steer/],
    ['--layer without --steer/--ablate', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--layer', '2'], /--layer has no effect without --steer or --ablate/],
    ['--coef when every --steer names its own', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', `${fa}:1:2`, '--coef', '3'], /--coef has no effect: every --steer names its coefficient/],
    ['--steer X --ablate X', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', fa, '--ablate', fa, '--layer', '2', '--coef', '4'], /cancel: ablating the vector's direction at layer 2 removes the steering/],
    ['--steer X:2 with --ablate X:all', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', `${fa}:2:4`, '--ablate', `${fa}:all`], /cancel/],
    ['--steer without a layer', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', fa, '--coef', '4'], /needs a layer: --steer FILE:LAYER\[:COEF\] or --layer L/],
    ['--steer without a coefficient', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', `${fa}:2`], /needs a coefficient/],
    ['--steer at all layers', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--steer', `${fa}:all:2`], /'all' is for --ablate/],
    ['--top-p without --temperature', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--top-p', '0.9'], /--top-p applies only when sampling: give --temperature/],
    ['--top-k without --temperature', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--top-k', '5'], /--top-k applies only when sampling/],
    ['two --prompt flags', () => ['generate', '--model', ORGANISM, '--prompt', 'hi', '--prompt', 'there'], /--prompt was given 2 times; it takes one value/],
    ['--system without --prompt', () => ['generate', '--model', LLAMA, '--tokens', '[1,2]', '--system', 'be evil'], /--system goes with --prompt/],
  ];
  test.each(cases)('%s', async (_name, args, message) => {
    const r = await runCli(args());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
