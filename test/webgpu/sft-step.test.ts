/**
 * test/train/step.test.ts on the webgpu backend, at the same tolerances (the suite is test/support/parity-suites.ts):
 * one SFT step's loss and gradients against Hugging Face, plain, steered and ablated; no leak across steps.
 */
import { sftStepTests } from '../support/parity-suites';
import { setUpWebGpuSuite } from './support';

setUpWebGpuSuite();
sftStepTests();
