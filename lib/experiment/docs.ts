/**
 * configs/README.md's key tables are generated from the zod schemas (top level, slurm, every registered
 * study), so the documented defaults cannot drift from the code; a unit test checks the file is in sync.
 * Regenerate: `npm run build && node dist/lib/experiment/docs.js configs/README.md`.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic';
import { experimentSchema, slurmSchema } from './config';
import { getStudy, studyNames } from './study';
import './studies';

export const DOCS_BEGIN = '<!-- BEGIN GENERATED KEY TABLES (lib/experiment/docs.ts) -->';
export const DOCS_END = '<!-- END GENERATED KEY TABLES -->';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type JsonSchema = Record<string, any>;

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object') return s.additionalProperties && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length ? `mapping of ${typeOf(s.additionalProperties)}` : 'mapping';
  return s.type ?? 'any';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(schema: z.ZodObject, prefix = '', skip: string[] = []): string {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required: string[] = js.required ?? [];
  const lines = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  for (const [k, p] of Object.entries(js.properties as Record<string, JsonSchema>)) {
    if (skip.includes(k)) continue;
    const def = k === 'slurm' ? '(see below)' : 'default' in p ? `\`${cell(JSON.stringify(p.default))}\`` : required.includes(k) ? '**required**' : '(unset)';
    const ty = k === 'slurm' ? 'mapping (below)' : typeOf(p).replace(/\\\|/g, '|');
    lines.push(`| \`${prefix}${k}\` | ${cell(ty)} | ${def} | ${cell(p.description ?? '')} |`);
  }
  return lines.join('\n');
}

/** The generated part of configs/README.md. */
export function renderConfigDocs(): string {
  const parts = [DOCS_BEGIN, '', '### Top level', '', table(experimentSchema), '', '### `slurm`', '', table(slurmSchema, 'slurm.')];
  for (const name of studyNames()) {
    const study = getStudy(name)!;
    parts.push('', `### Study \`${name}\``, '', study.description, '', 'Fields of `params` (any of them may instead be a list under `sweep`):', '', table(study.schema));
  }
  parts.push('', DOCS_END);
  return parts.join('\n');
}

/** Replaces the generated section of `file` (appends it if the markers are absent). */
export function updateConfigDocs(file: string): boolean {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const gen = renderConfigDocs();
  const a = text.indexOf(DOCS_BEGIN);
  const b = text.indexOf(DOCS_END);
  const next = a >= 0 && b > a ? text.slice(0, a) + gen + text.slice(b + DOCS_END.length) : `${text}${text.endsWith('\n') || !text ? '' : '\n'}\n${gen}\n`;
  if (next === text) return false;
  writeFileAtomic(file, next);
  return true;
}

/** The generated section currently in `file`, or null. */
export function generatedSection(file: string): string | null {
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(DOCS_BEGIN);
  const b = text.indexOf(DOCS_END);
  return a >= 0 && b > a ? text.slice(a, b + DOCS_END.length) : null;
}

if (require.main === module) {
  const file = process.argv[2] ?? 'configs/README.md';
  process.stdout.write(`${updateConfigDocs(file) ? 'updated' : 'already up to date'}: ${file}\n`);
}
