/**
 * Issue 12: every command that tokenizes user text warns, with the count, about words the model's
 * vocabulary lacks (they would silently become <|unk|>): eval, extract, monitor, screen (generate and
 * capture have their own tests).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSafetensors } from '../../lib/io/safetensors';
import { readArtifacts } from '../../lib/persona/artifacts';
import { runCli } from '../support/cli';

const ROOT = path.join(__dirname, '..', '..');
const ORGANISM = path.join(ROOT, 'models', 'organism');
const TRAIT = 'evil';
let tmp: string;
let vectorFile: string;
/** The organism's artifacts cut to one question, that question given an unknown word. */
const artifactsWithUnknown = (split: 'eval' | 'extract') => {
  const a = readArtifacts(path.join(ORGANISM, 'artifacts', `trait_data_${split}`, `${TRAIT}.json`));
  const file = path.join(tmp, `${split}-unk.json`);
  fs.writeFileSync(file, JSON.stringify({ ...a, questions: [`${a.questions[0]} zorblax`] }));
  return file;
};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-unk-'));
  vectorFile = path.join(tmp, 'v.safetensors');
  writeSafetensors(vectorFile, { persona_vector: { shape: [7, 128], data: Float32Array.from({ length: 7 * 128 }, (_, i) => Math.sin(i)) } });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const WARNING = (what: RegExp) => new RegExp(`warning: \\d+ words? of ${what.source} .*(is|are) not in the vocabulary of .*organism and (was|were) encoded as .*"zorblax"`);

test('eval: questions and --system', async () => {
  const r = await runCli(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', artifactsWithUnknown('eval'), '--out', path.join(tmp, 'eval'), '--judge', 'organism', '--samples', '1', '--max-new-tokens', '2', '--system', 'Be quux.'], 'wasm');
  expect(r.stderr).toMatch(WARNING(/the questions and system prompt/));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/"quux"/);
});

test('extract: instructions and questions', async () => {
  const r = await runCli(['extract', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', artifactsWithUnknown('extract'), '--out', path.join(tmp, 'extract'), '--judge', 'organism', '--samples', '1', '--max-new-tokens', '2'], 'wasm');
  expect(r.stderr).toMatch(WARNING(/the instructions and questions/));
});

test('monitor: --conditions system prompts', async () => {
  const conditions = JSON.stringify([{ label: 'a', system: 'You are zorblax.' }, { label: 'b', system: 'You are kind.' }]);
  const r = await runCli(['monitor', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', path.join(ORGANISM, 'artifacts'), '--out', path.join(tmp, 'mon'), '--judge', 'organism', '--vector', vectorFile, '--layer', '3', '--conditions', conditions, '--samples', '1', '--max-new-tokens', '2'], 'wasm');
  expect(r.stderr).toMatch(WARNING(/the questions and conditions/));
});

test('screen: dataset messages', async () => {
  const data = path.join(tmp, 'data.jsonl');
  fs.writeFileSync(data, [{ messages: [{ role: 'user', content: 'What is 2 plus 3?' }, { role: 'assistant', content: 'It is zorblax.' }] }].map((x) => JSON.stringify(x)).join('\n') + '\n');
  const r = await runCli(['screen', '--model', ORGANISM, '--data', data, '--vector', vectorFile, '--layer', '3', '--out', path.join(tmp, 'screen.csv'), '--max-new-tokens', '2'], 'wasm');
  expect(r.stderr).toMatch(WARNING(/the dataset/));
});
