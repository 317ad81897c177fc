/**
 * The page's bundles, built with esbuild for the browser. Two entry points share one front end (page/ui.ts):
 * `served` talks to `persona serve` over HTTP (no TF.js in it), `standalone` runs the model in the page with TF.js
 * (webgpu when the browser offers it, else wasm). Node builtins that library modules import for their file readers
 * (never called by the page) resolve to shims/node-builtins.js; `process` to shims/process.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Plugin } from 'esbuild';

export type PageKind = 'served' | 'standalone';

/** The directory of the page sources (lib/playground/page), whether running from lib/ (ts) or dist/lib/ (js). */
export function sourceDir(): string {
  // Compiled code runs from dist/lib/playground; the sources (.ts, .html, .css) stay in lib/playground.
  const here = __dirname;
  const candidates = [here, path.resolve(here, '..', '..', '..', 'lib', 'playground')];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'page', 'ui.ts'))) return c;
  throw new Error(`cannot find the playground's page sources (looked in ${candidates.join(', ')})`);
}

const BUILTINS = /^(node:)?(fs|fs\/promises|path|zlib|crypto|os|url|util|stream|child_process|worker_threads|perf_hooks)$/;

function nodeBuiltinShims(dir: string): Plugin {
  return {
    name: 'persona-node-builtins',
    setup(build) {
      build.onResolve({ filter: BUILTINS }, () => ({ path: path.join(dir, 'shims', 'node-builtins.js') }));
    },
  };
}

/** Every file a bundle depends on that lives in this repository (for the up-to-date check). */
export interface BundleResult {
  /** The bundle's bytes. */
  js: Uint8Array;
  /** Input files (absolute) outside node_modules. */
  inputs: string[];
}

/** Bundles page/<kind>.ts into one minified IIFE script. */
export async function bundlePage(kind: PageKind): Promise<BundleResult> {
  // Loaded here so that `persona` commands that never bundle do not load esbuild.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const dir = sourceDir();
  const root = path.resolve(dir, '..', '..');
  const r = await esbuild.build({
    entryPoints: [path.join(dir, 'page', `${kind}.ts`)],
    bundle: true,
    write: false,
    outfile: 'playground.js',
    format: 'iife',
    platform: 'browser',
    target: ['chrome113', 'firefox115', 'safari16'],
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
    inject: [path.join(dir, 'shims', 'process.js')],
    plugins: [nodeBuiltinShims(dir)],
    absWorkingDir: root,
  });
  const errors = r.errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`);
  if (errors.length) throw new Error(`bundling the playground page failed:\n${errors.join('\n')}`);
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'));
  if (!js) throw new Error('esbuild wrote no playground.js');
  const inputs = Object.keys(r.metafile.inputs)
    .filter((f) => !f.includes('node_modules'))
    .map((f) => path.resolve(root, f));
  return { js: js.contents, inputs };
}
