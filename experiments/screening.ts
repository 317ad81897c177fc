/**
 * Entry point of the screening study on the organism (see lib/experiment/studies/screening.ts):
 *
 *   node dist/experiments/screening.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/screening.yaml)
 *
 * Same as `persona run CONFIG`, then prints a summary table and, last, the summary path. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { screeningTable } from '../lib/experiment/studies/screening';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('screening', 'configs/organism/screening.yaml', (s) => formatTable(screeningTable(s.screening as never)));
