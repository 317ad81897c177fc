/**
 * A content-addressed on-disk cache shared by all cells and experiments (rollouts, judge scores,
 * activation reductions, vectors, adapters). An entry is a directory <root>/<kind>/<h[0:2]>/<h>/ where
 * h = sha256(canonical JSON of {kind, key}); the key object must hold everything that determines the
 * value (model fingerprint, prompts, seeds, settings). An entry is built in a work directory beside it
 * and renamed into place, so a killed process leaves no half entry. The work directory of an entry is
 * fixed (.partial-<h>, guarded by a lock file) and kept when the computation fails or is killed, so what
 * it finished (judged rollout rows, training checkpoints) is where the rerun's computation finds it and
 * continues from it. A second process computing the same entry at the same time works in a private temp
 * directory instead; both succeed and the first rename wins.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { canonicalJson, sha256Hex } from './hash';
import { Lock, acquireLock, pidAlive } from './lock';

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

  /** The work directory of (kind, key): where an unfinished computation of the entry keeps its files. */
  partialDir(kind: string, key: unknown): string {
    const dir = this.entryDir(kind, key);
    return path.join(path.dirname(dir), `.partial-${path.basename(dir)}`);
  }

  /**
   * The directory for (kind, key), filled once by `compute(workDir)` with whatever files the value is made
   * of (a vector, an adapter, rollouts). Returns the final directory; its files must be treated as read-only.
   * `workDir` may hold the files of an earlier, failed computation of the same key: compute should continue
   * from them (resumable CSVs and checkpoints do) or overwrite them.
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
    const partial = this.partialDir(kind, key);
    let lock: Lock | null = null;
    try {
      lock = acquireLock(`${partial}.lock`, `computing cache entry ${kind}/${path.basename(dir)}`);
    } catch (e) {
      // Another live process (or this one) computes the entry now: work privately, the first rename wins.
      if (!(e instanceof PersonaError)) throw e;
    }
    const work = lock ? partial : fs.mkdtempSync(path.join(parent, `.tmp-${process.pid}-`));
    try {
      fs.mkdirSync(work, { recursive: true });
      fs.writeFileSync(path.join(work, KEY_FILE), canonicalJson({ kind, key }) + '\n'); // for humans inspecting the cache
      await compute(work);
      try {
        fs.renameSync(work, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // Another process finished the same entry first: keep theirs (same key, same value).
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && fs.existsSync(dir)) fs.rmSync(work, { recursive: true, force: true });
        else throw e;
      }
    } catch (e) {
      // The fixed work directory stays for the rerun to continue from; a private one has no later reader.
      if (!lock) fs.rmSync(work, { recursive: true, force: true });
      throw e;
    } finally {
      lock?.release();
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
