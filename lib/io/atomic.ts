import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Write a file so that readers see either the old content or the whole new content, never a partial
 * file: write a temp file in the same directory (rename is only atomic within one filesystem), fsync it,
 * then rename over the target. The temp file is removed if anything fails.
 */
export function writeFileAtomic(filePath: string, data: string | Uint8Array): void {
  writeFileAtomicChunks(filePath, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
}

/**
 * Write a file atomically from a sequence of chunks without holding them all in memory
 * (used for large weight files). Same temp + fsync + rename protocol as writeFileAtomic.
 */
export function writeFileAtomicChunks(filePath: string, chunks: Iterable<Uint8Array>): void {
  const dir = path.dirname(path.resolve(filePath));
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, filePath);
  } catch (err) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* keep the original error */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* temp may not exist */ }
    throw err;
  }
  fsyncDir(dir);
}

/** Persist the rename itself; not supported on every platform (e.g. Windows), so failures are ignored. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* best effort */
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* ignore */ }
  }
}
