/**
 * A lost GPU device (driver reset, GPU removed): after loseDeviceForTesting() every library read of a tensor must
 * reject with a PersonaError saying the GPU device was lost, instead of hanging or returning zeros.
 *
 * This file destroys the device of its jest worker. Jest gives every test file its own module registry, so the next
 * file loads a fresh tfjs engine and lib/backend/webgpu and creates a new Dawn instance and device: the other webgpu
 * files are unaffected whatever the order (checked by running the project in band with this file first).
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../../lib/errors';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { captureActivations } from '../../lib/model/capture';
import { trainStep } from '../../lib/train/step';
import { loseDeviceForTesting } from '../../lib/backend/webgpu';
import { FIXTURE_ROOT } from '../support/hf-parity';
import { takeGpuErrors, useWebGpu } from './support';

const DIR = path.join(FIXTURE_ROOT, 'llama-tiny');
const LOST = /GPU device was lost/;
/** A read that neither hangs nor resolves: it must reject with the lost-device PersonaError, within a few seconds. */
async function expectLost(what: string, p: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: neither resolved nor rejected within 20 s`)), 20000)));
  let err: unknown = null;
  try {
    await Promise.race([p().then(() => Promise.reject(new Error(`${what}: resolved on a lost device`))), timeout]);
  } catch (e) {
    err = e;
  } finally {
    clearTimeout(timer);
  }
  expect([what, err instanceof PersonaError ? 'PersonaError' : String(err)]).toEqual([what, 'PersonaError']);
  expect((err as Error).message).toMatch(LOST);
}

let model: Model;
const ids = [[1, 40, 41, 42, 43], [1, 7, 8, 9, 10]];
beforeAll(async () => {
  await useWebGpu();
  model = await Model.load(DIR);
});

test('before the loss: generate works and the GPU reports no error', async () => {
  const r = await generate(model, { ids }, { greedy: true, maxNewTokens: 2, eosTokenIds: [] });
  expect(r.tokens.map((t) => t.length)).toEqual([2, 2]);
  expect(await takeGpuErrors()).toEqual([]);
});

describe('after loseDeviceForTesting()', () => {
  beforeAll(() => loseDeviceForTesting());

  test('generate rejects with a PersonaError: the GPU device was lost', async () => {
    await expectLost('generate', () => generate(model, { ids }, { greedy: true, maxNewTokens: 2, eosTokenIds: [] }));
  });

  test('trainStep rejects with the same PersonaError', async () => {
    await expectLost('trainStep', () => trainStep(model, { ids, labels: ids }));
  });

  test('captureActivations rejects with the same PersonaError', async () => {
    await expectLost('captureActivations', () => captureActivations(model, [{ ids: ids[0], promptLength: 2 }], { reductions: ['response_mean'] }));
  });

  test('reading a parameter back (Model.hfValues) rejects with the same PersonaError', async () => {
    await expectLost('hfValues', () => model.hfValues('model.norm.weight'));
  });

  test('loading a model rejects with the same PersonaError, and leaves no tensors', async () => {
    const before = tf.memory().numTensors;
    await expectLost('Model.load', () => Model.load(DIR));
    expect(tf.memory().numTensors).toBe(before);
  });
});
