/**
 * Per-token projections of captured activations onto persona vectors: a·v/|v| at every position (the
 * monitoring projection, lib/persona/vector.ts `project`, taken at each token instead of the last prompt
 * token), as CSV rows in long format: position, token_id, token, role (prompt | response), layer, vector,
 * projection.
 */
import { stringify } from 'csv-stringify/sync';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import type { TokenCapture } from '../model/tokens';
import { PersonaVector, project } from './vector';

export interface ProjectionTarget {
  /** Label in the CSV's vector column (e.g. the file name). */
  name: string;
  vector: PersonaVector;
  /** hidden_states index to project at; default every captured layer (each with its own row of the vector). */
  layer?: number;
}

export interface TokenProjectionRow {
  position: number;
  token_id: number;
  token: string;
  role: 'prompt' | 'response';
  layer: number;
  vector: string;
  projection: number;
}

export const TOKEN_PROJECTION_COLUMNS = ['position', 'token_id', 'token', 'role', 'layer', 'vector', 'projection'] as const;

/** Rows ordered by vector, layer, position. `tokenText(id)` gives the token column (e.g. the tokenizer's piece). */
export function tokenProjections(cap: TokenCapture, promptLength: number, targets: readonly ProjectionTarget[], tokenText: (id: number) => string): TokenProjectionRow[] {
  const T = cap.ids.length;
  const captured = new Map(cap.tensors.filter((t) => t.layer !== undefined).map((t) => [t.layer!, t.values]));
  const rows: TokenProjectionRow[] = [];
  for (const tgt of targets) {
    const layers = tgt.layer !== undefined ? [tgt.layer] : [...captured.keys()];
    if (!layers.length) throw new PersonaError(`projecting onto ${tgt.name} needs captured hidden_states layers`, { field: 'layers' });
    for (const L of layers) {
      const acts = captured.get(L);
      if (!acts) throw new PersonaError(`projecting onto ${tgt.name} at layer ${L}: hidden_states.${L} was not captured (captured: ${[...captured.keys()].join(', ') || 'none'})`, { field: 'layers' });
      let dir: Float32Array;
      try {
        dir = tgt.vector.layer(L);
      } catch (e) {
        throw new PersonaError(`${tgt.name}: ${(e as Error).message}${tgt.vector.numRows === 1 ? ' (name its layer: VECTOR:LAYER)' : ''}`, { field: 'project' });
      }
      const p = project(acts, T, cap.hidden, dir);
      for (let t = 0; t < T; t++) rows.push({ position: t, token_id: cap.ids[t], token: tokenText(cap.ids[t]), role: t < promptLength ? 'prompt' : 'response', layer: L, vector: tgt.name, projection: p[t] });
    }
  }
  return rows;
}

/** Writes the rows as CSV (header TOKEN_PROJECTION_COLUMNS), atomically. */
export function writeTokenProjectionsCsv(file: string, rows: readonly TokenProjectionRow[]): void {
  const records = rows.map((r) => TOKEN_PROJECTION_COLUMNS.map((c) => r[c]));
  writeFileAtomic(file, stringify([[...TOKEN_PROJECTION_COLUMNS], ...records], { cast: { number: (n) => String(n) } }));
}
