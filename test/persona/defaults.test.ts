/**
 * Issue 12, consistent defaults: the CLI commands take the paper's defaults from one table
 * (lib/persona/defaults.ts), generate steers at response positions like eval and the studies, and the README
 * shows the same table. (--help is not run in-process: yargs exits the process after printing it.)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSafetensors } from '../../lib/io/safetensors';
import { DEFAULTS, defaultsMarkdownTable } from '../../lib/persona/defaults';
import { SteeringCell } from '../../lib/experiment/studies/shared/cell';
import { FIXTURE_ROOT } from '../support/hf-parity';
import { runCli } from '../support/cli';

const REPO = path.resolve(__dirname, '../..');
const LLAMA = path.join(FIXTURE_ROOT, 'llama-tiny');

test('the README shows the defaults table', () => {
  expect(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')).toContain(defaultsMarkdownTable());
});

test("generate steers at the paper's response positions by default (before: all)", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-defaults-'));
  const v = path.join(tmp, 'v.safetensors');
  writeSafetensors(v, { v: { shape: [64], data: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3) } });
  const gen = async (extra: string[]) => {
    const out = path.join(tmp, `g${Math.random()}.json`);
    const r = await runCli(['generate', '--model', LLAMA, '--tokens', '[1,5,9,3,7,11]', '--max-new-tokens', '6', '--steer', `${v}:2:4`, ...extra, '--json', out]);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(fs.readFileSync(out, 'utf8')).tokens;
  };
  const dflt = await gen([]);
  expect(dflt).toEqual(await gen(['--positions', 'response']));
  expect(dflt).not.toEqual(await gen(['--positions', 'all']));
  const studyDefault: SteeringCell['positions'] = DEFAULTS.steeringPositions;
  expect(studyDefault).toBe('response');
});
