/** Content keys: sha256 of the RFC 8785 canonical JSON of a value, so key order and number spelling never change a key. */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { PersonaError } from '../errors';

/** Canonical JSON (sorted keys, fixed number format); refuses values JSON cannot represent exactly. */
export function canonicalJson(value: unknown, what = 'value'): string {
  checkJsonValue(value, what);
  const s = canonicalize(value);
  if (s === undefined) throw new PersonaError(`${what} has no JSON form`);
  return s;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of the canonical JSON of `value`. */
export function contentHash(value: unknown, what = 'value'): string {
  return sha256Hex(canonicalJson(value, what));
}

// A key containing undefined, NaN, a function or a class instance would hash the same as a different value.
function checkJsonValue(v: unknown, path: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new PersonaError(`${path} is ${v}, which JSON cannot hold`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJsonValue(x, `${path}[${i}]`));
    return;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue; // dropped by JSON, as by canonicalize
      checkJsonValue(x, `${path}.${k}`);
    }
    return;
  }
  throw new PersonaError(`${path} is not plain JSON data (${v === undefined ? 'undefined' : typeof v})`);
}
