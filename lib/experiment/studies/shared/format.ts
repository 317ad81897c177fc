/** Printing study tables, and files of several experiment configs (the quickstart's). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { PersonaError } from '../../../errors';
import { writeFileAtomic } from '../../../io/atomic';
import { locate, readConfigTree } from '../../config';

export type TableRow = Record<string, string | number | boolean | null | undefined>;

/** A plain-text table (columns padded, numbers to 3 significant digits, null as "–"). */
export function formatTable(rows: readonly TableRow[]): string {
  if (!rows.length) return '(no rows)\n';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const show = (v: TableRow[string]) => (v === null || v === undefined ? '–' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)))) : String(v));
  const cells = rows.map((r) => cols.map((c) => show(r[c])));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(width[i])).join('  ').trimEnd();
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/**
 * A file of several experiment configs, one per top-level key (configs/organism/quickstart.yaml:
 * `steering: {extends: steering.yaml, …}`, `monitoring: {…}`): writes each section as its own config file
 * under `outDir` and returns {name, file} in file order. Relative `extends` and the path params named in
 * `pathParams` (wherever in the extends chain they are set) are made absolute, so each written file is an
 * ordinary config that resolves exactly as the section did: `persona run` accepts it.
 */
export function splitConfigSections(file: string, outDir: string, pathParams: readonly string[] = ['model', 'artifacts']): { name: string; file: string }[] {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PersonaError(`cannot read: ${(e as Error).message.split('\n')[0]}`, { file });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Object.keys(doc).length)
    throw new PersonaError('expected a mapping of section name → experiment config', { file });
  fs.mkdirSync(outDir, { recursive: true });
  const here = path.dirname(path.resolve(file));
  return Object.entries(doc as Record<string, unknown>).map(([name, section]) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new PersonaError(`section name '${name}' must be a plain file stem`, { file, field: name });
    if (section === null || typeof section !== 'object' || Array.isArray(section)) throw new PersonaError('a section must be an experiment config (a mapping)', { file, field: name });
    const s = { ...(section as Record<string, unknown>) };
    const abs = (p: unknown) => (typeof p === 'string' ? path.resolve(here, p) : p);
    if (s.extends !== undefined) s.extends = Array.isArray(s.extends) ? s.extends.map(abs) : abs(s.extends);
    // The section's own run and cache folders are relative to the sections file, not to where it is written.
    for (const k of ['output_dir', 'cache_dir']) if (s[k] !== undefined) s[k] = abs(s[k]);
    // Path params: resolved against the file of the chain that sets them (the loader resolves against the named file only).
    const params = { ...((s.params as Record<string, unknown> | undefined) ?? {}) };
    const exts = s.extends === undefined ? [] : Array.isArray(s.extends) ? s.extends : [s.extends];
    const inherited = exts.map((e) => readConfigTree(String(e)));
    for (const key of pathParams) {
      if (typeof params[key] === 'string') params[key] = path.resolve(here, params[key] as string);
      else
        for (const tree of [...inherited].reverse()) {
          const v = (tree.raw.params as Record<string, unknown> | undefined)?.[key];
          if (typeof v !== 'string') continue;
          params[key] = path.resolve(path.dirname(locate(tree, ['params', key]).file), v);
          break;
        }
    }
    if (Object.keys(params).length) s.params = params;
    const out = path.join(outDir, `${name}.yaml`);
    const text = `# Section '${name}' of ${path.relative(process.cwd(), path.resolve(file))}, written by the quickstart (edit the original)\n${YAML.stringify(s)}`;
    if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== text) writeFileAtomic(out, text);
    return { name, file: out };
  });
}
