/**
 * The standalone site's index (site.json): what `persona playground build` wrote next to the page and what the page
 * loads. Types only (shared by the builder in Node and the page).
 */
import type { VectorMeta } from '../persona/vector';

export const SITE_FORMAT = 'persona-playground-site';

export interface SiteVector {
  /** The name requests use (as GET /v1/persona/vectors would list it). */
  name: string;
  /** The file it was built from, as given to the build (for `persona generate --steer`). */
  source: string;
  /** Raw little-endian float32 values, row-major [rows, hidden], relative to site.json. */
  file: string;
  shape: [number, number];
  meta: VectorMeta;
}

export interface SiteIndex {
  format: typeof SITE_FORMAT;
  version: 1;
  model: {
    /** The checkpoint directory as given to the build (for reproduce commands). */
    dir: string;
    /** Directory in the site holding config.json, generation_config.json, tokenizer files and model.json + shards. */
    path: string;
  };
  vectors: SiteVector[];
  neutralPrompts?: string[];
}
