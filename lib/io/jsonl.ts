import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { PersonaError } from '../errors';

const CHUNK_BYTES = 1 << 16;

/**
 * Yield each non-blank line of a JSON Lines file parsed, with its 1-based line number. The file is read
 * in chunks, so memory stays bounded by the longest line. A line that is not JSON throws a PersonaError
 * naming the file and line.
 */
export function* readJsonl(path: string): Generator<{ line: number; value: unknown }> {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new PersonaError(`cannot open JSONL file: ${(e as Error).message}`, { file: path });
  }
  try {
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.alloc(CHUNK_BYTES);
    let carry = '';
    let lineNo = 0;
    const parse = (text: string): { line: number; value: unknown } | undefined => {
      lineNo++;
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (text.trim() === '') return undefined;
      try {
        return { line: lineNo, value: JSON.parse(text) };
      } catch (e) {
        throw new PersonaError(`line is not valid JSON: ${(e as Error).message}`, { file: path, line: lineNo });
      }
    };
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      const parts = (carry + decoder.write(buf.subarray(0, n))).split('\n');
      carry = parts.pop() as string;
      for (const part of parts) {
        const r = parse(part);
        if (r) yield r;
      }
    }
    carry += decoder.end();
    if (carry !== '') {
      const r = parse(carry);
      if (r) yield r;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Append one value as one line and fsync, so an incremental log survives a kill with every completed
 * line intact. The whole line goes out in one write call on an O_APPEND descriptor.
 */
export function appendJsonl(path: string, value: unknown): void {
  const json = JSON.stringify(value);
  if (json === undefined) throw new PersonaError(`cannot write ${typeof value} as a JSON line`, { file: path });
  const fd = fs.openSync(path, 'a');
  try {
    const line = Buffer.from(json + '\n', 'utf8');
    let off = 0;
    while (off < line.byteLength) off += fs.writeSync(fd, line, off, line.byteLength - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
