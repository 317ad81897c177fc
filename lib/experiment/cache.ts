/**
 * A content-addressed on-disk cache shared by all cells and experiments (rollouts, judge scores,
 * activation reductions, vectors, adapters). An entry is a directory <root>/<kind>/<h[0:2]>/<h>/ where
 * h = sha256(canonical JSON of {kind, key}); the key object must hold everything that determines the
 * value (model fingerprint, prompts, seeds, settings). An entry is built in a temp directory beside it
 * and renamed into place, so a killed process leaves no half entry; two processes computing the same
 * entry both succeed and the first rename wins.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { canonicalJson, sha256Hex } from './hash';
import { pidAlive } from './lock';

const KIND = /^[a-z0-9][a-z0-9_-]*$/;
const VALUE_FILE = 'value.json';
const KEY_FILE = 'key.json';

export interface CacheStats {
  hits: number;
  misses: number;
}

export class Cache {
  readonly stats: CacheStats = { hits: 0, misses: 0 };
  constructor(readonly root: string) {}

  /** Directory of the entry for (kind, key), whether or not it exists. */
  entryDir(kind: string, key: unknown): string {
    if (!KIND.test(kind)) throw new PersonaError(`cache kind '${kind}' must be lower-case letters, digits, '_' or '-'`);
    const h = sha256Hex(canonicalJson({ kind, key }, `cache key of '${kind}'`));
    return path.join(this.root, kind, h.slice(0, 2), h);
  }

  has(kind: string, key: unknown): boolean {
    return fs.existsSync(this.entryDir(kind, key));
  }

  /**
   * The JSON value for (kind, key), computed once: `compute` runs only when no entry exists.
   * Values must be plain JSON (numbers finite).
   */
  async getOrCompute<T>(kind: string, key: unknown, compute: () => T | Promise<T>): Promise<T> {
    const dir = await this.getOrComputeDir(kind, key, async (tmp) => {
      const value = await compute();
      fs.writeFileSync(path.join(tmp, VALUE_FILE), canonicalJson(value, `cached '${kind}' value`));
    });
    return JSON.parse(fs.readFileSync(path.join(dir, VALUE_FILE), 'utf8')) as T;
  }

  /**
   * The directory for (kind, key), filled once by `compute(tmpDir)` with whatever files the value is made
   * of (a vector, an adapter, rollouts). Returns the final directory; its files must be treated as read-only.
   */
  async getOrComputeDir(kind: string, key: unknown, compute: (dir: string) => void | Promise<void>): Promise<string> {
    const dir = this.entryDir(kind, key);
    if (fs.existsSync(dir)) {
      this.stats.hits++;
      return dir;
    }
    this.stats.misses++;
    const parent = path.dirname(dir);
    fs.mkdirSync(parent, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(parent, `.tmp-${process.pid}-`));
    try {
      fs.writeFileSync(path.join(tmp, KEY_FILE), canonicalJson({ kind, key }) + '\n'); // for humans inspecting the cache
      await compute(tmp);
      try {
        fs.renameSync(tmp, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // Another process finished the same entry first: keep theirs (same key, same value).
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && fs.existsSync(dir)) fs.rmSync(tmp, { recursive: true, force: true });
        else throw e;
      }
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return dir;
  }

  /** Removes temp directories left by processes that died mid-compute (their pid is gone). */
  cleanStaleTemps(): number {
    let removed = 0;
    if (!fs.existsSync(this.root)) return 0;
    const walk = (d: string, depth: number) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const m = /^\.tmp-(\d+)-/.exec(e.name);
        if (m) {
          if (!pidAlive(Number(m[1]))) {
            fs.rmSync(path.join(d, e.name), { recursive: true, force: true });
            removed++;
          }
        } else if (depth < 2) walk(path.join(d, e.name), depth + 1);
      }
    };
    walk(this.root, 0);
    return removed;
  }
}

/** Writes JSON atomically, creating parent directories. */
export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
