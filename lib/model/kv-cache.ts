/**
 * Row operations on a KV cache, for batches whose membership changes between decoding steps (continuous batching in
 * the server; finished rows leaving a generation batch). A cache row is left-padded: its real positions are the
 * last ones, masked 1, and each row keeps its own next position id, so rows of different lengths share one tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import type { KVCache } from './transformer';

/** Cache length of a (non-empty) cache. */
export function cacheLength(cache: KVCache): number {
  return cache.mask[0]?.length ?? 0;
}

/** The rows `rows` of a cache, in that order (a new cache; the input is not modified or disposed). */
export function selectCacheRows(cache: KVCache, rows: readonly number[]): KVCache {
  const B = cache.mask.length;
  if (rows.length === 0) throw new PersonaError('internal: selecting no rows of a KV cache');
  for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= B) throw new PersonaError(`internal: KV cache has rows 0..${B - 1}, not ${r}`);
  const idx = tf.tensor1d(rows as number[], 'int32');
  try {
    return {
      layers: cache.layers.map(({ k, v }) => ({ k: tf.gather(k, idx, 0) as tf.Tensor4D, v: tf.gather(v, idx, 0) as tf.Tensor4D })),
      mask: rows.map((r) => cache.mask[r].slice()),
      nextPosition: rows.map((r) => cache.nextPosition[r]),
    };
  } finally {
    idx.dispose();
  }
}

/**
 * The caches stacked as rows of one cache, each left-padded (zeros, masked 0) to the longest. Padded keys get
 * attention bias finfo.min, so they add exact zeros to each row's attention.
 */
export function concatCacheRows(caches: readonly KVCache[]): KVCache {
  if (caches.length === 0) throw new PersonaError('internal: concatenating no KV caches');
  const S = Math.max(...caches.map(cacheLength));
  const padded = (t: tf.Tensor4D, by: number): tf.Tensor4D => (by === 0 ? t : (tf.pad(t, [[0, 0], [0, 0], [by, 0], [0, 0]]) as tf.Tensor4D));
  const layers = caches[0].layers.map((_, i) =>
    tf.tidy(() => ({
      k: tf.concat(caches.map((c) => padded(c.layers[i].k, S - cacheLength(c))), 0) as tf.Tensor4D,
      v: tf.concat(caches.map((c) => padded(c.layers[i].v, S - cacheLength(c))), 0) as tf.Tensor4D,
    })),
  );
  return {
    layers,
    mask: caches.flatMap((c) => c.mask.map((m) => [...new Array(S - m.length).fill(0), ...m])),
    nextPosition: caches.flatMap((c) => c.nextPosition),
  };
}

/** Leading positions that are padding in every row. */
export function sharedPadding(cache: KVCache): number {
  const S = cacheLength(cache);
  let n = 0;
  while (n < S && cache.mask.every((m) => m[n] === 0)) n++;
  return n;
}

/** The cache without its first `n` positions (a new cache; the input is not modified or disposed). */
export function dropLeadingPositions(cache: KVCache, n: number): KVCache {
  const S = cacheLength(cache);
  if (!(n >= 0 && n < S)) throw new PersonaError(`internal: cannot drop ${n} of ${S} cache positions`);
  return {
    layers: cache.layers.map(({ k, v }) => {
      const [B, H, , D] = k.shape;
      return { k: tf.slice(k, [0, 0, n, 0], [B, H, S - n, D]), v: tf.slice(v, [0, 0, n, 0], [B, H, S - n, D]) };
    }),
    mask: cache.mask.map((m) => m.slice(n)),
    nextPosition: cache.nextPosition.slice(),
  };
}
