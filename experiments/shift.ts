/**
 * Entry point of the shift study on the organism (see lib/experiment/studies/shift.ts):
 *
 *   node dist/experiments/shift.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/shift.yaml)
 *
 * Same as `persona run CONFIG`, then prints a summary table and, last, the summary path. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { shiftTable } from '../lib/experiment/studies/shift';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('shift', 'configs/organism/shift.yaml', (s) => formatTable(shiftTable(s.shift as never)));
