/** The experiment framework: configs → cells → runs, cache, shards, Slurm plans, collection. */
export * from './config';
export * from './study';
export * from './cells';
export * from './cache';
export * from './lock';
export * from './runner';
export * from './slurm';
export { canonicalJson, contentHash, sha256Hex } from './hash';
