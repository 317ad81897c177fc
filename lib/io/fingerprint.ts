/**
 * The identity of a checkpoint directory for cache keys: sha256 over the names and bytes of the files that
 * determine its outputs (config, tokenizer, chat template, weights), not the notes, reports or artifacts
 * kept beside them. Streamed, so the shards of a 7B model are never read whole; remembered per process
 * while the files' sizes and modification times stay the same.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';

const CHECKPOINT_FILE = /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens)\.json$|^chat_template\.jinja$|\.safetensors(\.index\.json)?$|\.bin(\.index\.json)?$|^model\.json$/;
const remembered = new Map<string, { stamp: string; fingerprint: string }>();

export function checkpointFingerprint(dir: string): string {
  const abs = path.resolve(dir);
  if (!fs.existsSync(path.join(abs, 'config.json'))) throw new PersonaError('not a checkpoint directory (no config.json)', { file: abs });
  const files = fs.readdirSync(abs).filter((f) => CHECKPOINT_FILE.test(f)).sort();
  const stamp = files
    .map((f) => {
      const s = fs.statSync(path.join(abs, f));
      return `${f}:${s.size}:${s.mtimeMs}`;
    })
    .join('\n');
  const known = remembered.get(abs);
  if (known && known.stamp === stamp) return known.fingerprint;
  const h = createHash('sha256');
  const buf = Buffer.alloc(1 << 22);
  for (const f of files) {
    h.update(`${f}\0`);
    const fd = fs.openSync(path.join(abs, f), 'r');
    try {
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    h.update('\0');
  }
  const fingerprint = h.digest('hex');
  remembered.set(abs, { stamp, fingerprint });
  return fingerprint;
}
