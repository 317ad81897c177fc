/**
 * test/model/parity.test.ts on the webgpu backend, at the same tolerance (the suite is test/support/parity-suites.ts):
 * Hugging Face parity of hidden states and logits, steering, ablation, greedy generation in every mode, no leak.
 */
import { hfParityTests } from '../support/parity-suites';
import { setUpWebGpuSuite } from './support';

setUpWebGpuSuite();
hfParityTests();
