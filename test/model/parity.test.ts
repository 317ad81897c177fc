/**
 * Parity with Hugging Face transformers on the tiny reference checkpoints: hidden states, logits,
 * left-padded batches, steering and ablation. Every setting is read from config.json / expected.json.
 */
import { useBackend } from '../../lib/backend';
import { hfParityTests } from '../support/parity-suites';

describe.each(['cpu', 'wasm'] as const)('%s backend', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, () => undefined);
  });
  hfParityTests();
});
