/**
 * Entry point of the paper study on the organism (see lib/experiment/studies/paper.ts):
 *
 *   node dist/experiments/paper.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/paper.yaml)
 *
 * Same as `persona run CONFIG` (all five studies, one report), then prints every finding with its threshold and pass/fail, what did not reproduce and, last, the summary path. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { findingsTable } from '../lib/experiment/studies/paper';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('paper', 'configs/organism/paper.yaml', (s) => {
  const lines = [...(s.not_reproduced as string[]), ...(s.not_measured as string[])].map((l) => `  - ${l}\n`).join('');
  return formatTable(findingsTable(s.findings as never)) + `${s.passed} of ${s.checked} findings pass${lines ? ':\n' + lines : '\n'}`;
});
