/**
 * CLI edge cases: negative numbers as separate flag values (`--coefs -2,0`), a stdout pipe closed early
 * (`persona … | head`), and flag checks that must refuse before any output file is written.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSafetensors } from '../../lib/io/safetensors';
import { readArtifacts } from '../../lib/persona/artifacts';
import { runCli } from '../support/cli';

const ROOT = path.join(__dirname, '..', '..');
const ORGANISM = path.join(ROOT, 'models', 'organism');
const LLAMA = path.join(ROOT, 'test', 'fixtures', 'hf-parity', 'llama-tiny');
const TRAIT = 'evil';
let tmp: string;
let evalFile: string; // the organism's eval artifacts cut to one question
let extractFile: string;
let vectorFile: string; // a [N+1, hidden] vector for the organism (6 layers, hidden 128)

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-edges-'));
  for (const split of ['eval', 'extract'] as const) {
    const a = readArtifacts(path.join(ORGANISM, 'artifacts', `trait_data_${split}`, `${TRAIT}.json`));
    const file = path.join(tmp, `${split}.json`);
    fs.writeFileSync(file, JSON.stringify({ ...a, questions: a.questions.slice(0, 1) }));
    if (split === 'eval') evalFile = file;
    else extractFile = file;
  }
  vectorFile = path.join(tmp, 'v.safetensors');
  const data = Float32Array.from({ length: 7 * 128 }, (_, i) => Math.sin(i));
  writeSafetensors(vectorFile, { persona_vector: { shape: [7, 128], data } });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]) => runCli(args, 'wasm');

const oneLine = (s: string) => expect(s.trimEnd().split('\n')).toHaveLength(1);

describe('negative numbers as separate flag values', () => {
  test('eval --coefs -2,0 (and -0.5) parse like --coefs=-2,0', async () => {
    for (const coefs of [['--coefs', '-2,0'], ['--coefs=-2,0'], ['--coefs', '-0.5']]) {
      // Without --vector, nonzero coefficients are refused by the command itself: proof the flag parsed.
      const r = await run(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', evalFile, '--out', path.join(tmp, 'never'), '--judge', 'organism', ...coefs]);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toMatch(/Unknown argument/);
      expect(r.stderr).toMatch(/--coefs other than 0 need --vector/);
    }
  });

  test('eval --coefs -2,0 steers with -2 and 0', async () => {
    const out = path.join(tmp, 'eval-neg');
    const r = await run(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', evalFile, '--out', out, '--judge', 'organism', '--vector', vectorFile, '--layer', '3', '--coefs', '-2,0', '--samples', '1', '--max-new-tokens', '4']);
    if (r.code !== 0) throw new Error(r.stderr);
    expect(r.stdout).toMatch(/^L3_coef-2_response\s+1\s/m);
    expect(r.stdout).toMatch(/^unsteered\s+1\s/m);
  });

  test('monitor --shots -1 reaches the command (which refuses a negative shot count)', async () => {
    const r = await run(['monitor', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', evalFile, '--out', path.join(tmp, 'never'), '--judge', 'organism', '--vector', vectorFile, '--layer', '3', '--shots', '-1,2']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/Unknown argument/);
    expect(r.stderr).toMatch(/--shots/);
    oneLine(r.stderr);
  });

  test.each([['-1.5'], ['-.5'], ['-1e-3']])('generate --coef %s parses', async (coef) => {
    // No --prompt/--tokens: the command's own check fires only once parsing succeeded.
    const r = await run(['generate', '--model', LLAMA, '--steer', vectorFile, '--layer', '1', '--coef', coef]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/Unknown argument/);
    expect(r.stderr).toMatch(/give --prompt TEXT or --tokens JSON/);
  });
});

describe('a closed stdout pipe', () => {
  const big = () => {
    const f = path.join(tmp, 'big.safetensors');
    writeSafetensors(f, { persona_vector: { shape: [400, 4], data: new Float32Array(1600).fill(1) } });
    return f;
  };

  test.each([['vector info'], ['--help']])('persona %s | (reader gone) exits 0 without a stack trace', (what) => {
    const main = path.join(ROOT, 'dist', 'cli', 'main.js');
    const args = what === '--help' ? '--help' : `vector info ${big()}`;
    // `true` exits at once, so every write of node's finds the pipe closed; pipefail reports node's status.
    const r = spawnSync('bash', ['-c', `set -o pipefail; node ${JSON.stringify(main)} ${args} | true`], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(r.status).toBe(0);
  });
});

describe('--max-new-tokens is checked before anything is written', () => {
  const cases: [string, () => string[]][] = [
    ['eval', () => ['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', evalFile, '--judge', 'organism']],
    ['extract', () => ['extract', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', extractFile, '--judge', 'organism', '--samples', '1']],
    ['monitor', () => ['monitor', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', evalFile, '--judge', 'organism', '--vector', vectorFile, '--layer', '3', '--samples', '1']],
  ];
  test.each(cases)('%s --max-new-tokens 0 refuses in one line and creates no files', async (name, args) => {
    for (const bad of ['0', '1.5']) {
      const out = path.join(tmp, `mnt-${name}-${bad}`);
      const r = await run([...args(), '--out', out, '--max-new-tokens', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/--max-new-tokens/);
      oneLine(r.stderr);
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});
