import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicChunks } from '../../lib/io/atomic';
import { tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe('writeFileAtomic', () => {
  it('writes strings and bytes, replaces existing content, leaves no temp file', () => {
    const f = path.join(dir, 'out.txt');
    writeFileAtomic(f, 'héllo');
    expect(fs.readFileSync(f, 'utf8')).toBe('héllo');
    writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir)).toEqual(['out.txt']);
  });

  it('on failure throws, removes its temp file and leaves the old content', () => {
    const target = path.join(dir, 'taken');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'x');
    // rename(file -> non-empty directory) fails after the temp file was written.
    expect(() => writeFileAtomic(target, 'data')).toThrow();
    expect(fs.readdirSync(dir)).toEqual(['taken']);
    expect(() => writeFileAtomic(path.join(dir, 'no', 'such', 'dir.txt'), 'x')).toThrow();
  });

  it('streams chunks; a failing producer leaves the previous file intact and no temp', () => {
    const f = path.join(dir, 'big.bin');
    writeFileAtomicChunks(f, [new Uint8Array([1]), new Uint8Array(0), new Uint8Array([2, 3])]);
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    const failing = (function* () {
      yield new Uint8Array([9, 9]);
      throw new Error('producer failed');
    })();
    expect(() => writeFileAtomicChunks(f, failing)).toThrow('producer failed');
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir)).toEqual(['big.bin']);
  });
});
