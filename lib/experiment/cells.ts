/** Stable cell ids and deterministic shards. */
import { PersonaError } from '../errors';
import { contentHash } from './hash';
import { CellSettings, getStudy } from './study';

/** Length of the hash prefix in a cell id: 12 hex digits = 48 bits, collisions negligible for any sweep. */
const HASH_CHARS = 12;

/**
 * `<slug>-<hash>`: the hash is sha256 of the canonical JSON of {study, seed, settings} (everything that
 * determines the cell), the slug lists the swept values (and the fields the study's nameFields adds) so a
 * folder listing reads like the sweep.
 */
export function cellId(study: string, seed: number, settings: CellSettings, axes: readonly string[]): string {
  const hash = contentHash({ study, seed, settings }, 'cell settings').slice(0, HASH_CHARS);
  // Fields the study names besides the axes (cells it adds beyond the grid), after the axes.
  const extra = (getStudy(study)?.nameFields?.(settings) ?? []).filter((f) => !axes.includes(f));
  const slug = [...axes, ...extra]
    .map((a) => `${a}=${slugValue(settings[a])}`)
    .join('_')
    .replace(/[^A-Za-z0-9=._+-]+/g, '-')
    .slice(0, 120);
  return slug ? `${slug}-${hash}` : hash;
}

function slugValue(v: unknown): string {
  if (typeof v === 'string') return v.split(/[\\/]/).pop()!.replace(/\.[A-Za-z0-9]+$/, '');
  return JSON.stringify(v) ?? 'null';
}

/** The hash part of a cell id. */
export function cellHash(id: string): string {
  return id.slice(-HASH_CHARS);
}

export interface Shard {
  index: number;
  count: number;
}

/** "i/n" with 0 ≤ i < n. */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new PersonaError(`--shard must look like i/n (e.g. 0/4), got '${s}'`, { field: 'shard' });
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new PersonaError(`--shard ${s}: need 0 ≤ i < n`, { field: 'shard' });
  return { index, count };
}

/** Which shard runs a cell: its hash modulo n, so shares depend only on the cell, not on sweep order. */
export function shardOf(id: string, count: number): number {
  return parseInt(cellHash(id).slice(0, 8), 16) % count;
}
