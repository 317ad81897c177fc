/**
 * Training-time interventions from the paper's steering_config: preventative steering (add coef·v at
 * each listed layer, all positions, every training forward pass), CAFT-style ablation (project the unit
 * direction out at each listed layer) and the projection-regularization baseline. They are hooks of the
 * training forward pass only: the saved weights/adapters carry no hook.
 */
import { PersonaError } from '../errors';
import { ModelConfig } from '../model/config';
import { siteForLayer } from '../model/hooks';
import { Intervention, ablate, steer } from '../model/interventions';
import { PersonaVector } from '../persona/vector';
import { ProjectionPenalty } from './step';

export interface SteeringSpec {
  vectorPath: string;
  type: 'steer' | 'ablate';
  /** Ignored for ablation. */
  coef: number;
  /** hidden_states indices L (hook on model.layers[L−1]); 'all' = 1..N, each with its own row of the vector. */
  layers: number[] | 'all';
}

export interface ProjectionRegSpec {
  vectorPath: string;
  layer: number;
  /** Weight λ of the penalty Σ_b (p_b − p⁰_b)² (averaged over the accumulation step's micro-batches). */
  weight: number;
}

/** Row L of a persona-vector file, checked against the model (hidden size, layer range). */
export function vectorForLayer(file: string, L: number, cfg: ModelConfig, field = 'layers'): Float32Array {
  try {
    siteForLayer(L, cfg.numLayers); // range check with the engine's message
  } catch (e) {
    throw new PersonaError((e as Error).message, { file, field });
  }
  const v = PersonaVector.load(file, { layer: L });
  if (v.hidden !== cfg.hiddenSize) throw new PersonaError(`vector has hidden size ${v.hidden}, the model has ${cfg.hiddenSize}`, { file, tensor: 'persona_vector' });
  try {
    return v.layer(L);
  } catch (e) {
    throw new PersonaError((e as Error).message, { file, field });
  }
}

export function resolveLayers(layers: number[] | 'all', cfg: ModelConfig): number[] {
  if (layers === 'all') return Array.from({ length: cfg.numLayers }, (_, i) => i + 1);
  if (layers.length === 0) throw new PersonaError('no layers given', { field: 'steering_config.layers' });
  return layers;
}

export function trainingInterventions(spec: SteeringSpec, cfg: ModelConfig): Intervention[] {
  return resolveLayers(spec.layers, cfg).map((L) => {
    const v = vectorForLayer(spec.vectorPath, L, cfg, 'steering_config.layers');
    return spec.type === 'steer' ? steer(v, L, spec.coef, 'all', cfg.numLayers) : ablate(v, L, cfg.numLayers);
  });
}

export function projectionPenalty(spec: ProjectionRegSpec, cfg: ModelConfig): ProjectionPenalty {
  const v = vectorForLayer(spec.vectorPath, spec.layer, cfg, 'projection_regularization.layer');
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  if (n === 0) throw new PersonaError('the vector is zero at that layer: no direction to project on', { file: spec.vectorPath });
  return { layer: spec.layer, unit: v.map((x) => x / n) };
}
