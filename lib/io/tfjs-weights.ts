import { PersonaError } from '../errors';
import type { WeightSource } from './weights';

export function openTfjsWeights(dir: string): WeightSource {
  throw new PersonaError('TF.js weights manifests are not supported yet', { file: dir });
}
