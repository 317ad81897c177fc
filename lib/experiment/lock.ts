/**
 * One run at a time per run folder (and shard): a lock file holding pid + hostname, created atomically
 * with its content (temp file + link, so no reader ever sees an empty lock). A lock whose pid is dead on
 * this host is stale and taken over; a lock from another host is refused (its pid cannot be checked).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../errors';

export interface LockInfo {
  pid: number;
  hostname: string;
  started: string;
  command?: string;
}

export interface Lock {
  file: string;
  release(): void;
}

/** Whether a process of this host is alive (EPERM: alive, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

export function acquireLock(file: string, what: string): Lock {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const info: LockInfo = { pid: process.pid, hostname: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info) + '\n');
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.linkSync(tmp, file); // fails with EEXIST if another run holds the lock
        return { file, release: () => releaseLock(file, info) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = readLock(file);
      if (held && held.hostname === info.hostname && held.pid === process.pid) {
        throw new PersonaError(`${what} is already running in this process`, { file });
      }
      if (held && held.hostname !== info.hostname) {
        throw new PersonaError(`${what} is locked by pid ${held.pid} on host ${held.hostname} (started ${held.started}); if that run is gone, delete the lock file`, { file });
      }
      if (held && pidAlive(held.pid)) {
        throw new PersonaError(`${what} is already running (pid ${held.pid} on ${held.hostname}, started ${held.started}); wait for it or stop it`, { file });
      }
      // Stale (dead pid, or unreadable): move it aside atomically so two takers cannot both remove a fresh lock.
      const aside = `${file}.stale.${process.pid}`;
      try {
        fs.renameSync(file, aside);
        const moved = readLock(aside);
        if (moved && moved.hostname === info.hostname && moved.pid !== held?.pid && pidAlive(moved.pid)) {
          // Another process took the lock between our read and the rename: put it back and refuse.
          fs.renameSync(aside, file);
          throw new PersonaError(`${what} is already running (pid ${moved.pid})`, { file });
        }
        fs.unlinkSync(aside);
      } catch (e) {
        if (e instanceof PersonaError) throw e;
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    throw new PersonaError(`${what}: could not take the lock (contended)`, { file });
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function releaseLock(file: string, info: LockInfo): void {
  const held = readLock(file);
  if (held && held.pid === info.pid && held.hostname === info.hostname) fs.rmSync(file, { force: true });
}
