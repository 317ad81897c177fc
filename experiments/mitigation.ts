/**
 * Entry point of the mitigation study on the organism (see lib/experiment/studies/mitigation.ts):
 *
 *   node dist/experiments/mitigation.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/mitigation.yaml)
 *
 * Same as `persona run CONFIG`, then prints a summary table and, last, the summary path. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { mitigationTable } from '../lib/experiment/studies/mitigation';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('mitigation', 'configs/organism/mitigation.yaml', (s) => formatTable(mitigationTable(s as never)));
