/**
 * `persona bench … --shape NAME`: random weights of a known shape, no checkpoint. The flag errors run in-process; one
 * real bench runs the built program (dist/, built by pretest) on the 25M shape with the wasm backend.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { runCli } from '../support/cli';

const run = (args: string[]) => runCli(args, 'cpu');

const NAMES = /qwen2\.5-0\.5b, qwen2\.5-7b, qwen3-4b, llama-3\.1-8b, synthetic-25m/;

test.each([
  ['neither --model nor --shape', ['bench', 'forward'], /give --model DIR \(a checkpoint\) or --shape NAME/],
  ['both --model and --shape', ['bench', 'generate', '--model', 'models/organism', '--shape', 'synthetic-25m'], /either --model DIR or --shape NAME, not both/],
  ['an unknown shape', ['bench', 'generate', '--shape', 'qwen9'], /unknown shape 'qwen9'; known shapes: /],
  ['train: neither', ['bench', 'train'], /give --model DIR/],
  ['train: an unknown shape', ['bench', 'train', '--shape', 'qwen9'], /unknown shape 'qwen9'/],
])('%s: one line, exit 1', async (_name, args, pattern) => {
  const r = await run(args);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^persona: /);
  expect(r.stderr).toMatch(pattern);
  if (!/not both/.test(pattern.source)) expect(r.stderr).toMatch(NAMES);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
});

test('bench generate --shape synthetic-25m (wasm, built program) prints the fields, adapter and shape included', () => {
  const bin = path.resolve(__dirname, '../../dist/cli/main.js');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [bin, 'bench', 'generate', '--shape', 'synthetic-25m', '--batch', '1', '--prompt-len', '8', '--new-tokens', '3', '--repeats', '1', '--backend', 'wasm'], { encoding: 'utf8' });
  const seconds = (Date.now() - t0) / 1000;
  expect(r.stderr).toMatch(/random weights of shape synthetic-25m \(26\.8M parameters/);
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({
    backend: 'wasm',
    adapter: null,
    model: null,
    shape: 'synthetic-25m',
    batch: 1,
    prompt_len: 8,
    new_tokens: 3,
    repeats: 1,
    prefill_ms: expect.any(Number),
    prefill_tokens_per_s: expect.any(Number),
    decode_ms_per_step: expect.any(Number),
    decode_tokens_per_s: expect.any(Number),
    peak_rss_mb: expect.any(Number),
  });
  expect(seconds).toBeLessThan(60);
});
