/**
 * The `persona` program end to end on the tiny reference checkpoints: generate/forward JSON (the
 * interface external conformance checks use), steering files, convert, and one clear error with a
 * non-zero exit for every kind of bad checkpoint or input.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSafetensors } from '../../lib/io/safetensors';
import { FIXTURE_ROOT, maxAbsDiff, readExpected } from '../support/hf-parity';
import { runCli } from '../support/cli';

const LLAMA = path.join(FIXTURE_ROOT, 'llama-tiny');
const QWEN = path.join(FIXTURE_ROOT, 'qwen2-tiny-untied');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]) => runCli(args, 'cpu');

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

describe('generate and forward JSON', () => {
  const exp = readExpected(LLAMA);

  test('generate --tokens --attention-mask --greedy equals Hugging Face', async () => {
    const out = path.join(tmp, 'gen.json');
    const r = await run(['generate', '--model', LLAMA, '--tokens', JSON.stringify(exp.batch.input_ids), '--attention-mask', JSON.stringify(exp.batch.attention_mask), '--greedy', '--max-new-tokens', String(exp.generation.max_new_tokens), '--json', out]);
    expect(r.code).toBe(0);
    expect(readJson(out).tokens).toEqual(exp.generation.plain.new_tokens);
  });

  test('forward --hidden-states writes logits [B][T][V] and hidden_states [N+1][B][T][H]', async () => {
    const out = path.join(tmp, 'fwd.json');
    const r = await run(['forward', '--model', LLAMA, '--tokens', JSON.stringify([exp.single.input_ids]), '--hidden-states', '--json', out]);
    expect(r.code).toBe(0);
    const j = readJson(out);
    expect(maxAbsDiff(j.logits[0], exp.single.logits)).toBeLessThan(1e-4);
    expect(j.hidden_states).toHaveLength(exp.num_hidden_layers + 1);
    j.hidden_states.forEach((h: number[][][], L: number) => expect(maxAbsDiff(h[0], exp.single.hidden_states[L])).toBeLessThan(1e-4));
  });

  test('--steer FILE with a [N+1, hidden] vector uses row L; --ablate too', async () => {
    const N = exp.num_hidden_layers;
    const H = exp.hidden_size;
    const L = exp.steering.layer;
    const rows = new Float32Array((N + 1) * H);
    rows.set(exp.steering.vector, L * H); // other rows zero: only row L may matter
    const vfile = path.join(tmp, 'vec.safetensors');
    writeSafetensors(vfile, { persona_vector: { shape: [N + 1, H], data: rows } });
    const out = path.join(tmp, 'steer.json');
    expect((await run(['forward', '--model', LLAMA, '--tokens', JSON.stringify(exp.single.input_ids), '--steer', vfile, '--layer', String(L), '--coef', String(exp.steering.coef), '--json', out])).code).toBe(0);
    expect(maxAbsDiff(readJson(out).logits[0], exp.steering.single.logits)).toBeLessThan(1e-4);
    expect((await run(['forward', '--model', LLAMA, '--tokens', JSON.stringify(exp.single.input_ids), '--ablate', vfile, '--layer', String(L), '--json', out])).code).toBe(0);
    expect(maxAbsDiff(readJson(out).logits[0], exp.ablation.single.logits)).toBeLessThan(1e-4);
  });

  test('generate with a steering file and --positions response equals Hugging Face', async () => {
    const vfile = path.join(tmp, 'vec1.safetensors');
    writeSafetensors(vfile, { v: { shape: [exp.hidden_size], data: Float32Array.from(exp.steering.vector) } });
    const out = path.join(tmp, 'gen-steer.json');
    const r = await run(['generate', '--model', LLAMA, '--tokens', JSON.stringify(exp.batch.input_ids), '--attention-mask', JSON.stringify(exp.batch.attention_mask), '--greedy', '--max-new-tokens', '12', '--steer', vfile, '--layer', String(exp.steering.layer), '--coef', String(exp.steering.coef), '--positions', 'response', '--json', out]);
    expect(r.code).toBe(0);
    expect(readJson(out).tokens).toEqual(exp.generation.steer_response.new_tokens);
  });
});

describe('convert', () => {
  test.each([false, true])('TF.js weights (float16 %s) load and give the same outputs', async (f16) => {
    const exp = readExpected(QWEN);
    const dir = path.join(tmp, `conv-${f16}`);
    expect((await run(['convert', '--model', QWEN, '--out', dir, ...(f16 ? ['--float16'] : [])])).code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
    const a = path.join(tmp, `a-${f16}.json`);
    const b = path.join(tmp, `b-${f16}.json`);
    await run(['forward', '--model', QWEN, '--tokens', JSON.stringify(exp.single.input_ids), '--json', a]);
    await run(['forward', '--model', dir, '--tokens', JSON.stringify(exp.single.input_ids), '--json', b]);
    const d = maxAbsDiff(readJson(a).logits, readJson(b).logits);
    if (f16) expect(d).toBeLessThan(0.05); // float16 weights: ~1e-3 relative per weight
    else expect(d).toBe(0);
  });
});

describe('bad input: one clear error naming the file and tensor or field, exit code 1', () => {
  /** A copy of llama-tiny whose files the test then breaks. */
  function brokenCopy(name: string): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(LLAMA, f), path.join(dir, f));
    return dir;
  }
  const st = (dir: string) => path.join(dir, 'model.safetensors');
  /** Rewrites the JSON header of a safetensors file (keeping the data bytes). */
  function editHeader(file: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void) {
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    edit(header);
    let text = JSON.stringify(header);
    while ((8 + text.length) % 8) text += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    fs.writeFileSync(file, Buffer.concat([len, Buffer.from(text), buf.subarray(8 + n)]));
  }
  const generateArgs = (dir: string) => ['generate', '--model', dir, '--tokens', '[1,5,6]', '--max-new-tokens', '2'];

  const cases: [string, () => string[], RegExp][] = [
    ['truncated safetensors', () => {
      const d = brokenCopy('trunc');
      const size = fs.statSync(st(d)).size;
      fs.truncateSync(st(d), size - 1000);
      return generateArgs(d);
    }, /model\.safetensors.*(tensor '[^']+'|beyond|truncat)/i],
    ['header length beyond the file', () => {
      const d = brokenCopy('hdrlen');
      const fd = fs.openSync(st(d), 'r+');
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(10n ** 9n);
      fs.writeSync(fd, b, 0, 8, 0);
      fs.closeSync(fd);
      return generateArgs(d);
    }, /model\.safetensors.*header/i],
    ['header that is not JSON', () => {
      const d = brokenCopy('hdrjson');
      const fd = fs.openSync(st(d), 'r+');
      fs.writeSync(fd, Buffer.from('{{{{'), 0, 4, 8);
      fs.closeSync(fd);
      return generateArgs(d);
    }, /model\.safetensors.*JSON/i],
    ['unknown dtype', () => {
      const d = brokenCopy('dtype');
      editHeader(st(d), (h) => (h['model.norm.weight'].dtype = 'F8_E9'));
      return generateArgs(d);
    }, /model\.safetensors.*model\.norm\.weight.*F8_E9/i],
    ['tensor data range out of bounds', () => {
      const d = brokenCopy('range');
      editHeader(st(d), (h) => (h['model.norm.weight'].data_offsets = [0, 10 ** 8]));
      return generateArgs(d);
    }, /model\.safetensors.*model\.norm\.weight/i],
    ['missing tensor', () => {
      const d = brokenCopy('missing');
      editHeader(st(d), (h) => delete h['model.layers.1.mlp.up_proj.weight']);
      return generateArgs(d);
    }, /model\.layers\.1\.mlp\.up_proj\.weight.*missing|missing.*model\.layers\.1\.mlp\.up_proj\.weight/i],
    ['tensor shape contradicting config.json', () => {
      const d = brokenCopy('shape');
      const cfg = readJson(path.join(d, 'config.json'));
      cfg.intermediate_size = 96;
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
      return generateArgs(d);
    }, /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight'.*contradicts config\.json/],
    ['missing config field', () => {
      const d = brokenCopy('nofield');
      const cfg = readJson(path.join(d, 'config.json'));
      delete cfg.num_hidden_layers;
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
      return generateArgs(d);
    }, /config\.json, field 'num_hidden_layers': missing/],
    ['wrong-typed config field', () => {
      const d = brokenCopy('typed');
      const cfg = readJson(path.join(d, 'config.json'));
      cfg.hidden_size = '64';
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
      return generateArgs(d);
    }, /config\.json, field 'hidden_size': expected a number/],
    ['unsupported architecture', () => {
      const d = brokenCopy('arch');
      const cfg = readJson(path.join(d, 'config.json'));
      cfg.architectures = ['GPT2LMHeadModel'];
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
      return generateArgs(d);
    }, /unsupported architecture 'GPT2LMHeadModel'; supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM/],
    ['sharded index naming a missing shard', () => {
      const d = path.join(tmp, 'shard');
      fs.mkdirSync(d, { recursive: true });
      fs.copyFileSync(path.join(LLAMA, 'config.json'), path.join(d, 'config.json'));
      fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { 'model.norm.weight': 'model-00001-of-00002.safetensors' } }));
      return generateArgs(d);
    }, /model-00001-of-00002\.safetensors/],
    ['token id out of vocabulary range', () => ['generate', '--model', LLAMA, '--tokens', '[1, 5, 256]', '--max-new-tokens', '2'], /token id 256 .*out of the vocabulary range 0\.\.255/],
    ['steering vector of another hidden size', () => {
      const f = path.join(tmp, 'small.safetensors');
      writeSafetensors(f, { v: { shape: [32], data: new Float32Array(32).fill(1) } });
      return ['generate', '--model', LLAMA, '--tokens', '[1,5]', '--steer', f, '--layer', '2', '--coef', '1'];
    }, /small\.safetensors|hidden size 32/],
    ['layer out of range', () => {
      const f = path.join(tmp, 'ok.safetensors');
      writeSafetensors(f, { v: { shape: [64], data: new Float32Array(64).fill(1) } });
      return ['generate', '--model', LLAMA, '--tokens', '[1,5]', '--steer', f, '--layer', '9', '--coef', '1'];
    }, /layer 9 is out of range.*0\.\.4/],
  ];

  test.each(cases)('%s', async (_name, args, pattern) => {
    const r = await run(args());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^persona: /);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('the installed program', () => {
  const bin = path.resolve(__dirname, '../../dist/cli/main.js');
  test('runs from dist (built by npm ci / pretest) and exits non-zero on a bad checkpoint without a stack trace', () => {
    expect(fs.existsSync(bin)).toBe(true);
    const ok = spawnSync(process.execPath, [bin, 'generate', '--model', LLAMA, '--tokens', '[1,7,9]', '--max-new-tokens', '3', '--backend', 'cpu'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)[0]).toHaveLength(3);
    const bad = spawnSync(process.execPath, [bin, 'generate', '--model', path.join(tmp, 'nope'), '--tokens', '[1]'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/nope/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const help = spawnSync(process.execPath, [bin, 'generate', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--max-new-tokens/);
  });
});
