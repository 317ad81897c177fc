/**
 * Kernel dispatches and host uploads per decode step on webgpu: the device-independent overhead measure of the GPU
 * speed issue (goal ≤ 12 dispatches per layer per step). Measured on this commit (organism, batch 1): 303 per step,
 * 50.5 per layer, 23 uploads per step. The bounds below are those numbers: a change that adds dispatches fails here;
 * one that removes some lowers the bound in the same commit.
 */
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { decodeDispatches } from '../../lib/model/bench';
import { startDispatchCounter } from '../../lib/backend/dispatches';

const MAX_PER_LAYER = 50.5;
const MAX_UPLOADS = 23;

let model: Model;
beforeAll(async () => {
  await useBackend('webgpu', () => undefined);
  model = await Model.load('models/organism');
});
afterAll(() => model?.dispose());

test('decode dispatches and uploads per step, batch 1 and batch 4 (left padded)', async () => {
  const one = await decodeDispatches(model, [[5, 6, 7, 8]], 6);
  const four = await decodeDispatches(model, [[5, 6, 7, 8], [9, 10], [11, 12, 13], [14]], 6);
  process.stdout.write(`decode on webgpu, organism: batch 1 ${JSON.stringify(one)}; batch 4 ${JSON.stringify(four)}\n`);
  for (const r of [one, four]) {
    expect(r.decode_dispatches_per_step_per_layer).toBeGreaterThan(0);
    expect(r.decode_dispatches_per_step_per_layer).toBeLessThanOrEqual(MAX_PER_LAYER);
    expect(r.decode_uploads_per_step).toBeLessThanOrEqual(MAX_UPLOADS);
    expect(r.decode_dispatches_per_step).toBeCloseTo(r.decode_dispatches_per_step_per_layer! * model.config.numLayers, 6);
  }
});

test('the counter counts real dispatches and leaves the backend as it was when stopped', async () => {
  const c = startDispatchCounter()!;
  const out = model.forward({ ids: [[5, 6, 7]] }, { logits: 'last' });
  await out.logits!.data();
  out.logits!.dispose();
  c.stop();
  const n = c.counts.dispatches;
  expect(n).toBeGreaterThan(model.config.numLayers * 5);
  expect(Object.values(c.counts.byProgram).reduce((a, b) => a + b, 0)).toBe(n);
  const again = model.forward({ ids: [[5, 6, 7]] }, { logits: 'last' });
  await again.logits!.data();
  again.logits!.dispose();
  expect(c.counts.dispatches).toBe(n);
});
