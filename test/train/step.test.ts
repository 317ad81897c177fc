/**
 * trainStep against Hugging Face (expected.json `sft`): loss and gradient norms of one SFT step, plain,
 * steered and ablated, single sequence and right-padded batch. Settings all come from expected.json.
 */
import { useBackend } from '../../lib/backend';
import { sftStepTests } from '../support/parity-suites';

describe.each(['cpu', 'wasm'] as const)('%s backend', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, () => undefined);
  });
  sftStepTests();
});
