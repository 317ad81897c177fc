/**
 * The persona playground, Node side: the served page's assets (for `persona serve` to serve at `/`), and
 * `persona playground build`, a static site that runs the model and its persona vectors in the browser.
 * The page itself is page/ (browser code, bundled by ./bundle with esbuild).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { writeTfjsWeights } from '../io/tfjs-weights';
import { openWeights } from '../io/weights';
import { readModelConfig } from '../model/config';
import { PersonaVector } from '../persona/vector';
import { servedName } from '../serve/engine';
import { Tokenizer } from '../tokenizer';
import { PageKind, bundlePage, sourceDir } from './bundle';
import { SITE_FORMAT, SiteIndex, SiteVector } from './site';

export type { PlaygroundClient } from './client';
export { servedClient } from './client';
export * from './session';
export type { SiteIndex, SiteVector } from './site';

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const STAMP = 'build.json';

interface Stamp {
  kind: PageKind;
  esbuild: string;
  /** Every repository file the bundle was built from, with the size and mtime it had. */
  inputs: Record<string, [number, number]>;
}

function fileStamp(f: string): [number, number] | null {
  try {
    const s = fs.statSync(f);
    return [s.size, Math.round(s.mtimeMs)];
  } catch {
    return null;
  }
}

function esbuildVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('esbuild/package.json') as { version: string }).version;
}

function upToDate(dir: string, kind: PageKind): boolean {
  let stamp: Stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(dir, STAMP), 'utf8')) as Stamp;
  } catch {
    return false;
  }
  if (stamp.kind !== kind || stamp.esbuild !== esbuildVersion()) return false;
  for (const [f, s] of Object.entries(stamp.inputs)) {
    const now = fileStamp(f);
    if (!now || now[0] !== s[0] || now[1] !== s[1]) return false;
  }
  return ['index.html', 'playground.js', 'playground.css'].every((f) => fs.existsSync(path.join(dir, f)));
}

const building = new Map<PageKind, Promise<string>>();

/**
 * A directory holding the page of `kind` (index.html, playground.js, playground.css; for standalone also the TF.js
 * wasm binaries), under dist/playground/<kind>, bundled again when any source it was built from (the page, the
 * library modules it imports, package-lock.json) has changed since.
 */
export function pageAssetsDir(kind: PageKind): Promise<string> {
  let p = building.get(kind);
  if (!p) {
    p = buildPageAssets(kind).finally(() => building.delete(kind));
    building.set(kind, p);
  }
  return p;
}

async function buildPageAssets(kind: PageKind): Promise<string> {
  const src = sourceDir();
  const root = path.resolve(src, '..', '..');
  const dir = path.join(root, 'dist', 'playground', kind);
  if (upToDate(dir, kind)) return dir;
  const { js, inputs } = await bundlePage(kind);
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, STAMP), { force: true });
  writeFileAtomic(path.join(dir, 'playground.js'), js);
  const page = [path.join(src, 'page', 'index.html'), path.join(src, 'page', 'style.css')];
  writeFileAtomic(path.join(dir, 'index.html'), fs.readFileSync(page[0]));
  writeFileAtomic(path.join(dir, 'playground.css'), fs.readFileSync(page[1]));
  if (kind === 'standalone') {
    const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));
    for (const f of WASM_FILES) writeFileAtomic(path.join(dir, f), fs.readFileSync(path.join(wasmDir, f)));
  }
  const files = [...new Set([...inputs, ...page, path.join(root, 'package-lock.json')])].filter((f) => fs.existsSync(f));
  const stamp: Stamp = { kind, esbuild: esbuildVersion(), inputs: Object.fromEntries(files.map((f) => [f, fileStamp(f)!])) };
  writeFileAtomic(path.join(dir, STAMP), JSON.stringify(stamp, null, 1) + '\n');
  return dir;
}

/**
 * The served playground (index.html + playground.js + playground.css) for `persona serve` to serve at `/` with a
 * static route. The page talks to the same origin's /v1/chat/completions and /v1/persona/vectors.
 */
export function playgroundAssetsDir(): Promise<string> {
  return pageAssetsDir('served');
}

export interface BuildSiteOptions {
  modelDir: string;
  vectors: string[];
  outDir: string;
  /** Neutral prompts the page starts with (default: the page's own). */
  neutralPrompts?: string[];
  /** Weights as float16 in the manifest (half the download; values rounded to float16). */
  float16?: boolean;
  log?: (msg: string) => void;
}

export interface SiteSummary {
  outDir: string;
  files: number;
  bytes: number;
  /** Bytes of the model's weight shards. */
  weightBytes: number;
  vectors: string[];
}

function dirBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const s = dirBytes(p);
      files += s.files;
      bytes += s.bytes;
    } else {
      files++;
      bytes += fs.statSync(p).size;
    }
  }
  return { files, bytes };
}

/**
 * `persona playground build`: a static site that runs `modelDir` with `vectors` in the browser. Writes the page
 * (index.html, playground.js, playground.css, TF.js wasm binaries), model/ (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json with the chat template, model.json + shards in TF.js's weights-manifest
 * format), vectors/ (raw float32) and site.json last, so a site with a site.json is complete.
 */
export async function buildSite(o: BuildSiteOptions): Promise<SiteSummary> {
  const log = o.log ?? (() => undefined);
  const cfg = readModelConfig(o.modelDir);
  const tokenizer = Tokenizer.load(o.modelDir);
  if (tokenizer.chatTemplate === undefined) throw new PersonaError('the tokenizer has no chat template; the playground needs one to render chats', { file: o.modelDir, field: 'chat_template' });
  if (o.vectors.length === 0) throw new PersonaError('give at least one persona vector file', { field: 'vectors' });
  const loaded = o.vectors.map((file) => {
    const v = PersonaVector.load(file, { numLayers: cfg.numLayers });
    if (v.hidden !== cfg.hiddenSize) throw new PersonaError(`vector has hidden size ${v.hidden}, the model ${o.modelDir} has ${cfg.hiddenSize}`, { file });
    if (v.numLayers !== undefined && v.numLayers !== cfg.numLayers)
      throw new PersonaError(`vector has ${v.numRows} rows (hidden_states 0..${v.numRows - 1}), the model ${o.modelDir} has ${cfg.numLayers} layers (${cfg.numLayers + 1} rows)`, { file });
    return { file, v, name: servedName(v, file) };
  });
  const seen = new Map<string, string>();
  for (const x of loaded) {
    if (seen.has(x.name)) throw new PersonaError(`two vectors are named '${x.name}' (${seen.get(x.name)} and ${x.file}); give one a "name" in its metadata`, { file: x.file });
    seen.set(x.name, x.file);
  }

  const out = path.resolve(o.outDir);
  fs.mkdirSync(out, { recursive: true });
  // An old site.json must not describe files being replaced below.
  fs.rmSync(path.join(out, 'site.json'), { force: true });
  const page = await pageAssetsDir('standalone');
  for (const f of fs.readdirSync(page)) if (f !== STAMP) writeFileAtomic(path.join(out, f), fs.readFileSync(path.join(page, f)));
  log(`page: ${page}`);

  const modelOut = path.join(out, 'model');
  fs.mkdirSync(modelOut, { recursive: true });
  writeFileAtomic(path.join(modelOut, 'config.json'), fs.readFileSync(path.join(o.modelDir, 'config.json')));
  const gen = path.join(o.modelDir, 'generation_config.json');
  if (fs.existsSync(gen)) writeFileAtomic(path.join(modelOut, 'generation_config.json'), fs.readFileSync(gen));
  writeFileAtomic(path.join(modelOut, 'tokenizer.json'), fs.readFileSync(path.join(o.modelDir, 'tokenizer.json')));
  const tcFile = path.join(o.modelDir, 'tokenizer_config.json');
  const tc = fs.existsSync(tcFile) ? (JSON.parse(fs.readFileSync(tcFile, 'utf8')) as Record<string, unknown>) : {};
  // The template the framework uses (tokenizer_config.json's, or chat_template.jinja's), in the one file the page reads.
  writeFileAtomic(path.join(modelOut, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: tokenizer.chatTemplate }, null, 1) + '\n');
  const source = openWeights(o.modelDir);
  try {
    writeTfjsWeights(modelOut, source, { float16: o.float16 });
  } finally {
    source.close();
  }
  log(`weights: ${path.join(modelOut, 'model.json')}`);

  const vecOut = path.join(out, 'vectors');
  fs.mkdirSync(vecOut, { recursive: true });
  const vectors: SiteVector[] = loaded.map((x, i) => {
    const file = `vectors/${i}-${x.name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.bin`;
    writeFileAtomic(path.join(out, file), new Uint8Array(x.v.data.buffer, x.v.data.byteOffset, x.v.data.byteLength));
    return { name: x.name, source: x.file, file, shape: [x.v.numRows, x.v.hidden], meta: x.v.meta };
  });
  const index: SiteIndex = {
    format: SITE_FORMAT,
    version: 1,
    model: { dir: o.modelDir, path: 'model' },
    vectors,
    ...(o.neutralPrompts ? { neutralPrompts: o.neutralPrompts } : {}),
  };
  writeFileAtomic(path.join(out, 'site.json'), JSON.stringify(index, null, 1) + '\n');
  const size = dirBytes(out);
  const weightBytes = dirBytes(modelOut).bytes;
  return { outDir: out, files: size.files, bytes: size.bytes, weightBytes, vectors: vectors.map((v) => v.name) };
}
