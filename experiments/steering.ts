/**
 * Entry point of the steering study on the organism (see lib/experiment/studies/steering.ts):
 *
 *   node dist/experiments/steering.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/steering.yaml)
 *
 * Same as `persona run CONFIG`, then prints the summary table. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { steeringTable } from '../lib/experiment/studies/steering';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('steering', 'configs/organism/steering.yaml', (s) => formatTable(steeringTable(s.steering as never)));
