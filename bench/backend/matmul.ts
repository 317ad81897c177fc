/**
 * wasm backend speed before/after lib/backend's kernel fixes, measured in one process by swapping the
 * registered 'BatchMatMul' wasm kernel between the stock one and the fixed one, round by round (the
 * machine is shared, so each number is the best of its rounds).
 *
 *   npx tsc -p bench/backend && node dist/bench/backend/matmul.js [--rounds 5]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig } from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';

interface Bench {
  name: string;
  flops: number;
  run: () => tf.TensorContainer;
}

function timeBest(run: () => tf.TensorContainer, minMs = 400): number {
  tf.dispose(run()); // warm-up (XNNPACK packs weights on first use)
  let best = Infinity;
  const start = performance.now();
  let n = 0;
  while (n < 3 || performance.now() - start < minMs) {
    const t = performance.now();
    const out = run();
    // force completion: wasm kernels are synchronous, but read one value to be certain
    const first = (Array.isArray(out) ? out[0] : out) as tf.Tensor;
    first.dataSync();
    best = Math.min(best, performance.now() - t);
    tf.dispose(out);
    n++;
  }
  return best;
}

function benches(): Bench[] {
  const r = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', 7);
  const a = r([512, 512]);
  const b = r([512, 512]);
  const q = r([8, 128, 64]);
  const k = r([8, 128, 64]);
  const v = r([8, 128, 64]);
  // 2-layer MLP on activations kept 2-D as [B·S, H] = [256, 512]; hidden 2048
  const x = r([256, 512]);
  const y = r([256, 512]);
  const w1 = r([512, 2048]).mul(0.02);
  const w2 = r([2048, 512]).mul(0.02);
  const mlpLoss = (p: tf.Tensor, s: tf.Tensor) => tf.losses.meanSquaredError(y, tf.relu(tf.matMul(x, p)).matMul(s)) as tf.Scalar;
  const attn = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
    tf.matMul(tf.softmax(tf.matMul(qq, kk, false, true).mul(1 / 8)), vv).square().sum() as tf.Scalar;
  // tf.profile: 5 BatchMatMuls of 2·256·512·2048 flops (fwd 2; bwd dS, dH, dP — no dx, x is not a source)
  const mlpFlops = 5 * 2 * 256 * 512 * 2048;
  return [
    { name: 'matMul 512×512×512', flops: 2 * 512 ** 3, run: () => tf.matMul(a, b) },
    { name: 'matMul 512³ transposeA', flops: 2 * 512 ** 3, run: () => tf.matMul(a, b, true, false) },
    { name: 'matMul 512³ transposeB', flops: 2 * 512 ** 3, run: () => tf.matMul(a, b, false, true) },
    { name: 'attention [8,128,64]×[8,128,64]ᵀ', flops: 2 * 8 * 128 * 128 * 64, run: () => tf.matMul(q, k, false, true) },
    { name: 'MLP 256×512→2048→512 fwd+bwd', flops: mlpFlops, run: () => tf.grads(mlpLoss)([w1, w2]) },
    // 6 BatchMatMuls (qkᵀ, pv; d of each operand), softmax etc. not counted
    { name: 'attention fwd+bwd [8,128,64]', flops: 6 * 2 * 8 * 128 * 128 * 64, run: () => tf.grads(attn)([q, k, v]) },
  ];
}

async function main(): Promise<void> {
  const roundsArg = process.argv.indexOf('--rounds');
  const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
  const stock = { ...(tf.getKernel('BatchMatMul', 'wasm') as KernelConfig) };
  await useBackend('wasm', (m) => console.log(m));
  const fixed = { ...(tf.getKernel('BatchMatMul', 'wasm') as KernelConfig) };
  const use = (cfg: KernelConfig) => {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(cfg);
  };
  const bs = benches();
  const best: Record<string, { before: number; after: number }> = {};
  for (let round = 0; round < rounds; round++) {
    for (const bench of bs) {
      const rec = (best[bench.name] ??= { before: Infinity, after: Infinity });
      use(stock);
      rec.before = Math.min(rec.before, timeBest(bench.run));
      use(fixed);
      rec.after = Math.min(rec.after, timeBest(bench.run));
    }
  }
  console.log(`tfjs ${tf.version.tfjs}, wasm SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, ${rounds} rounds, best time per case`);
  console.log('case'.padEnd(36), 'before ms  GFLOP/s |  after ms  GFLOP/s | speed-up');
  for (const bench of bs) {
    const { before, after } = best[bench.name];
    const g = (ms: number) => (bench.flops / ms / 1e6).toFixed(1).padStart(7);
    console.log(
      bench.name.padEnd(36),
      before.toFixed(2).padStart(9), g(before), '|', after.toFixed(2).padStart(9), g(after), '|', `${(before / after).toFixed(1)}×`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
