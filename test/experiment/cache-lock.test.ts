/** The content-addressed cache and the run lock. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { Cache } from '../../lib/experiment/cache';
import { contentHash, sha256Hex } from '../../lib/experiment/hash';
import { acquireLock } from '../../lib/experiment/lock';
import { tmpDir } from './helpers';

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('cache', () => {
  test('computes once per key; the key is canonical JSON (order-free); entries are sha256-addressed', async () => {
    const c = new Cache(tmpDir('cache'));
    let calls = 0;
    const compute = () => {
      calls++;
      return { v: [1, 2.5, 'x'] };
    };
    expect(await c.getOrCompute('rollouts', { model: 'm', seed: 1 }, compute)).toEqual({ v: [1, 2.5, 'x'] });
    expect(await c.getOrCompute('rollouts', { seed: 1, model: 'm' }, compute)).toEqual({ v: [1, 2.5, 'x'] });
    expect(calls).toBe(1);
    await c.getOrCompute('rollouts', { model: 'm', seed: 2 }, compute);
    await c.getOrCompute('judge-scores', { model: 'm', seed: 1 }, compute); // same key, other kind
    expect(calls).toBe(3);
    expect(c.stats).toEqual({ hits: 1, misses: 3 });
    // Independent check of the address: sha256 of the RFC 8785 text written by hand.
    const h = sha256Hex('{"key":{"model":"m","seed":1},"kind":"rollouts"}');
    expect(c.entryDir('rollouts', { seed: 1, model: 'm' })).toBe(path.join(c.root, 'rollouts', h.slice(0, 2), h));
    expect(contentHash({ b: [1, { d: 1, c: 2 }], a: 1e21 })).toBe(sha256Hex('{"a":1e+21,"b":[1,{"c":2,"d":1}]}'));
  });

  test('directory values appear whole or not at all; a failed compute keeps its work for the rerun, which continues from it', async () => {
    const c = new Cache(tmpDir('cache'));
    await expect(
      c.getOrComputeDir('vectors', { t: 'evil' }, (dir) => {
        fs.writeFileSync(path.join(dir, 'half.bin'), 'x');
        throw new Error('died half-way');
      }),
    ).rejects.toThrow('died half-way');
    expect(c.has('vectors', { t: 'evil' })).toBe(false);
    const partial = c.partialDir('vectors', { t: 'evil' });
    // Only the work directory remains (no lock, no private temp): the rerun finds what was finished.
    expect(fs.readdirSync(path.dirname(c.entryDir('vectors', { t: 'evil' })))).toEqual([path.basename(partial)]);
    let seen = '';
    const dir = await c.getOrComputeDir('vectors', { t: 'evil' }, (d) => {
      seen = fs.readFileSync(path.join(d, 'half.bin'), 'utf8');
      fs.writeFileSync(path.join(d, 'v.bin'), 'vec');
    });
    expect(seen).toBe('x');
    expect(fs.readFileSync(path.join(dir, 'v.bin'), 'utf8')).toBe('vec');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'key.json'), 'utf8'))).toEqual({ key: { t: 'evil' }, kind: 'vectors' });
    expect(fs.readdirSync(path.dirname(dir))).toEqual([path.basename(dir)]);
  });

  test('while one computation holds the work directory, a concurrent one works privately and leaves it alone', async () => {
    const c = new Cache(tmpDir('cache'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = c.getOrComputeDir('v', { k: 1 }, async (d) => {
      fs.writeFileSync(path.join(d, 'a'), '1');
      await gate;
      throw new Error('first fails');
    });
    await new Promise((r) => setTimeout(r, 10));
    await expect(c.getOrComputeDir('v', { k: 1 }, () => { throw new Error('second fails'); })).rejects.toThrow('second fails');
    release();
    await expect(first).rejects.toThrow('first fails');
    expect(fs.readdirSync(path.dirname(c.entryDir('v', { k: 1 })))).toEqual([path.basename(c.partialDir('v', { k: 1 }))]);
    expect(fs.readFileSync(path.join(c.partialDir('v', { k: 1 }), 'a'), 'utf8')).toBe('1');
  });

  test('two concurrent computations of one key both succeed with one entry', async () => {
    const c = new Cache(tmpDir('cache'));
    const slow = (v: number) => () => new Promise<number>((r) => setTimeout(() => r(v), 20));
    const [a, b] = await Promise.all([c.getOrCompute('x', { k: 1 }, slow(7)), c.getOrCompute('x', { k: 1 }, slow(7))]);
    expect([a, b]).toEqual([7, 7]);
    const parent = path.dirname(c.entryDir('x', { k: 1 }));
    expect(fs.readdirSync(parent)).toHaveLength(1);
  });

  test('refuses keys JSON cannot represent and bad kinds; cleans temp dirs of dead processes only', async () => {
    const c = new Cache(tmpDir('cache'));
    await expect(c.getOrCompute('x', { v: NaN }, () => 1)).rejects.toThrow(PersonaError);
    await expect(c.getOrCompute('x', { v: undefined, f: () => 1 }, () => 1)).rejects.toThrow(/not plain JSON/);
    await expect(c.getOrCompute('../up', {}, () => 1)).rejects.toThrow(/cache kind/);
    await expect(c.getOrCompute('x', {}, () => Infinity)).rejects.toThrow(/JSON cannot hold/);
    const parent = path.join(c.root, 'x', 'ab');
    fs.mkdirSync(path.join(parent, `.tmp-${deadPid()}-zz`), { recursive: true });
    fs.mkdirSync(path.join(parent, `.tmp-${process.pid}-live`), { recursive: true });
    expect(c.cleanStaleTemps()).toBe(1);
    expect(fs.readdirSync(parent)).toEqual([`.tmp-${process.pid}-live`]);
  });
});

describe('run lock', () => {
  const info = (pid: number, hostname = os.hostname()) => JSON.stringify({ pid, hostname, started: '2025-01-01T00:00:00Z' });

  test('held lock refuses a second taker; release frees it', () => {
    const f = path.join(tmpDir('lock'), 'run.lock');
    const l = acquireLock(f, 'run x');
    expect(JSON.parse(fs.readFileSync(f, 'utf8'))).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    expect(() => acquireLock(f, 'run x')).toThrow(/already running in this process/);
    l.release();
    expect(fs.existsSync(f)).toBe(false);
    acquireLock(f, 'run x').release();
  });

  test('a live process on this host holds it; a dead pid is stale and taken over; another host is refused', async () => {
    const dir = tmpDir('lock');
    const f = path.join(dir, 'run.lock');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(f, info(child.pid!));
      expect(() => acquireLock(f, "experiment 'x'")).toThrow(new RegExp(`experiment 'x' is already running \\(pid ${child.pid} on ${os.hostname()}`));
      expect(JSON.parse(fs.readFileSync(f, 'utf8')).pid).toBe(child.pid); // untouched
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const l = acquireLock(f, 'x'); // the child is dead now: stale
    expect(JSON.parse(fs.readFileSync(f, 'utf8')).pid).toBe(process.pid);
    l.release();
    fs.writeFileSync(f, info(1, 'some-other-host'));
    expect(() => acquireLock(f, 'x')).toThrow(/locked by pid 1 on host some-other-host.*delete the lock file/);
    fs.writeFileSync(f, ''); // a torn lock (cannot happen with link(), but a user may truncate it) counts as stale
    acquireLock(f, 'x').release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
