/**
 * Issue 12: a local judge that scores none of the answers is an error naming the judge and the file (before:
 * NaN printed, exit 0); with a single judged answer per setting the table says n/a for ±se, with a note.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readArtifacts } from '../../lib/persona/artifacts';
import { runCli } from '../support/cli';
import { writeConstantJudge } from '../support/judge-model';

const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');
let tmp: string;
let evalFile: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-eval-unscored-'));
  const a = readArtifacts(path.join(ORGANISM, 'artifacts', 'trait_data_eval', 'evil.json'));
  evalFile = path.join(tmp, 'eval.json');
  fs.writeFileSync(evalFile, JSON.stringify({ ...a, questions: a.questions.slice(0, 1) }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const evalArgs = (judge: string, out: string) => ['eval', '--model', ORGANISM, '--trait', 'evil', '--artifacts', evalFile, '--out', out, '--judge-local', judge, '--samples', '1', '--max-new-tokens', '2'];

test('a local judge with no number tokens for fewer answers than its failure limit: an error, not NaN', async () => {
  const judge = path.join(tmp, 'words-judge');
  writeConstantJudge(judge, { ' the': 30, ' is': 28 });
  const out = path.join(tmp, 'words');
  const r = await runCli(evalArgs(judge, out), 'wasm');
  expect(r.code).toBe(1);
  expect(r.stdout).not.toMatch(/NaN/);
  expect(r.stderr).toMatch(/evil_unsteered\.csv: setting 'unsteered': judge .* gave no usable score for any of 1 answers .*delete it to judge them again/);
  expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('persona:'))).toHaveLength(1);
});

test('one judged answer per setting: ±se is n/a with a note, never NaN', async () => {
  const judge = path.join(tmp, 'score-judge');
  writeConstantJudge(judge, { '7': 30 });
  const r = await runCli(evalArgs(judge, path.join(tmp, 'scored')), 'wasm');
  if (r.code !== 0) throw new Error(r.stderr);
  expect(r.stdout).not.toMatch(/NaN/);
  expect(r.stdout).toMatch(/^unsteered\s+1\s+7(\.000)?\s+n\/a\s+7(\.000)?\s+n\/a$/m);
  expect(r.stderr).toMatch(/note: ±se is n\/a where fewer than 2 answers were judged: unsteered \(1\); raise --samples/);
});
