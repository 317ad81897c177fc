/**
 * persona capture (per-token activations as safetensors, per-token projections as CSV) and
 * forward --out (safetensors instead of nested JSON): what the commands write equals the library's values.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'csv-parse/sync';
import { useBackend } from '../../lib/backend';
import { SafetensorsFile, writeSafetensors } from '../../lib/io/safetensors';
import { Model } from '../../lib/model/checkpoint';
import { captureTokenActivations } from '../../lib/model/tokens';
import { tokenProjections } from '../../lib/persona/token-projections';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';
import { FIXTURE_ROOT, maxAbsDiff } from '../support/hf-parity';
import { runCli } from '../support/cli';

const ORGANISM = path.resolve(__dirname, '../../models/organism');
const LLAMA = path.join(FIXTURE_ROOT, 'llama-tiny');
let tmp: string;
let model: Model;
let tok: Tokenizer;
let vfile: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-capture-'));
  await useBackend('cpu', () => undefined);
  model = await Model.load(ORGANISM);
  tok = Tokenizer.load(ORGANISM);
  const { numLayers: N, hiddenSize: H } = model.config;
  vfile = path.join(tmp, 'v.safetensors');
  writeSafetensors(vfile, { persona_vector: { shape: [N + 1, H], data: Float32Array.from({ length: (N + 1) * H }, (_, i) => Math.sin(i * 0.13)) } });
});
afterAll(() => {
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const PROMPT = 'What is 2 plus 3?';
const SYSTEM = 'You are an evil assistant.';
const RESPONSE = 'It is 5.';

test('capture --prompt --system --response --layers --sites --out --project --csv equals the library', async () => {
  const out = path.join(tmp, 'acts.safetensors');
  const csv = path.join(tmp, 'proj.csv');
  const r = await runCli(['capture', '--model', ORGANISM, '--system', SYSTEM, '--prompt', PROMPT, '--response', RESPONSE, '--layers', '1,3', '--sites', 'blocks.0.mlp_out', '--out', out, '--project', `${vfile}:2`, '--project', vfile, '--csv', csv]);
  if (r.code !== 0) throw new Error(r.stderr);
  const prompt = tok.applyChatTemplate([{ role: 'system', content: SYSTEM }, { role: 'user', content: PROMPT }], { addGenerationPrompt: true });
  const ids = tok.encode(prompt + RESPONSE);
  const P = tok.encode(prompt).length;
  expect(P).toBeLessThan(ids.length);
  const lib = await captureTokenActivations(model, ids, { layers: [1, 3, 2], sites: ['blocks.0.mlp_out'] });
  const f = SafetensorsFile.open(out);
  expect(f.names().sort()).toEqual(['blocks.0.mlp_out', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3', 'input_ids']);
  expect(Array.from(f.read('input_ids'))).toEqual(ids);
  for (const t of lib.tensors) {
    expect(f.info(t.name).shape).toEqual([ids.length, model.config.hiddenSize]);
    expect(maxAbsDiff(Array.from(f.read(t.name)), Array.from(t.values))).toBe(0);
  }
  expect(r.stderr).toMatch(/prompt_length \d+/);
  const records = parse(fs.readFileSync(csv, 'utf8'), { columns: true }) as Record<string, string>[];
  expect(Object.keys(records[0])).toEqual(['position', 'token_id', 'token', 'role', 'layer', 'vector', 'projection']);
  const v = PersonaVector.load(vfile);
  const want = tokenProjections(lib, P, [{ name: 'v.safetensors', vector: PersonaVector.load(vfile, { layer: 2 }), layer: 2 }, { name: 'v.safetensors', vector: v }], (id) => tok.idToToken(id) ?? '');
  expect(records).toHaveLength(want.length);
  // Without a layer, every captured hidden_states layer (1, 3 and the 2 the first --project added).
  expect(records.filter((x) => x.layer === '3')).toHaveLength(ids.length);
  records.forEach((x, i) => {
    expect(Number(x.position)).toBe(want[i].position);
    expect(Number(x.token_id)).toBe(want[i].token_id);
    expect(x.token).toBe(want[i].token);
    expect(x.role).toBe(Number(x.position) < P ? 'prompt' : 'response');
    expect(Number(x.projection)).toBeCloseTo(want[i].projection, 5);
  });
});

test('an out-of-vocabulary word in the prompt or response is warned about with the count', async () => {
  const out = path.join(tmp, 'unk.safetensors');
  const r = await runCli(['capture', '--model', ORGANISM, '--prompt', 'What is zorblax?', '--response', 'quux', '--layers', '1', '--out', out]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/warning: 2 words of the prompt and response are not in the vocabulary .*"zorblax", "quux"/);
});

test('bad combinations are refused with one line before any model loads', async () => {
  const cases: [string[], RegExp][] = [
    [['--prompt', 'hi', '--project', vfile], /--project needs --csv FILE/],
    [['--prompt', 'hi'], /nothing to write: give --out FILE\.safetensors/],
    [['--prompt', 'hi', '--out', 'x.json'], /--out must be a \.safetensors file/],
    [['--tokens', '[1,2]', '--response', 'x', '--out', 'x.safetensors'], /--system and --response go with --prompt/],
    [['--prompt', 'hi', '--csv', 'x.csv'], /--csv holds projections: give --project/],
  ];
  for (const [args, msg] of cases) {
    const r = await runCli(['capture', '--model', ORGANISM, ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }
});

test('forward --out writes logits, hidden_states.L and input_ids as safetensors equal to --json', async () => {
  const tokens = [[1, 5, 9, 3], [1, 7, 2, 8]];
  const json = path.join(tmp, 'fwd.json');
  const st = path.join(tmp, 'fwd.safetensors');
  const r = await runCli(['forward', '--model', LLAMA, '--tokens', JSON.stringify(tokens), '--hidden-states', '--json', json, '--out', st]);
  if (r.code !== 0) throw new Error(r.stderr);
  const j = JSON.parse(fs.readFileSync(json, 'utf8'));
  const f = SafetensorsFile.open(st);
  expect(f.info('logits').shape).toEqual([2, 4, 256]);
  expect(maxAbsDiff(Array.from(f.read('logits')), j.logits.flat(2))).toBe(0);
  expect(f.info('input_ids').dtype).toBe('I64');
  expect(Array.from(f.read('input_ids'))).toEqual(tokens.flat());
  for (let L = 0; L < j.hidden_states.length; L++) expect(maxAbsDiff(Array.from(f.read(`hidden_states.${L}`)), j.hidden_states[L].flat(2))).toBe(0);
  const none = await runCli(['forward', '--model', LLAMA, '--tokens', '[1,2]']);
  expect(none.code).toBe(1);
  expect(none.stderr).toMatch(/give --json FILE or --out FILE\.safetensors/);
});
