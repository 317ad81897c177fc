/**
 * Entry point of the monitoring study on the organism (see lib/experiment/studies/monitoring.ts):
 *
 *   node dist/experiments/monitoring.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/monitoring.yaml)
 *
 * Same as `persona run CONFIG`, then prints the summary table. Resumes after any interruption.
 */
import { formatTable } from '../lib/experiment/studies/shared/format';
import { monitoringTable } from '../lib/experiment/studies/monitoring';
import { runStudyEntryPoint } from './study-entry';

runStudyEntryPoint('monitoring', 'configs/organism/monitoring.yaml', (s) => formatTable(monitoringTable(s.monitoring as never)));
