/// <reference lib="dom" />
/**
 * The standalone page: the model, its tokenizer and the persona vectors are fetched from the static site
 * (site.json) and run in the browser with TF.js — webgpu on a hardware adapter, else wasm (the binaries next to the
 * bundle) — behind the same chat-completions interface as `persona serve` (lib/serve/chat.ts in-process).
 * `?backend=wasm|webgpu|webgl|cpu` forces a backend.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installWasmFixes } from '../../backend/wasm-fixes';
import { describeAdapter, probeWebGpu, registerWebGpu } from '../../backend/webgpu';
import { Model, ParameterRows } from '../../model/checkpoint';
import { parseModelConfig } from '../../model/config';
import { PersonaVector } from '../../persona/vector';
import { chatCompletion } from '../../serve/chat';
import { ServeEngine } from '../../serve/engine';
import type { ChatCompletionChunk } from '../../serve/protocol';
import { Tokenizer } from '../../tokenizer';
import type { PlaygroundClient } from '../client';
import { SITE_FORMAT, SiteIndex } from '../site';
import { startPlayground } from './ui';

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${res.statusText}`);
  return res;
}
const fetchJson = async <T>(url: string): Promise<T> => (await fetchOk(url)).json() as Promise<T>;
async function fetchOptionalJson(url: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(url);
  return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
}

/** webgpu on a hardware adapter when the browser offers one, else wasm (with the library's wasm kernel fixes). */
async function chooseBackend(want: string | null): Promise<string> {
  let why = '';
  if (want === null || want === 'webgpu') {
    const probe = await probeWebGpu();
    if (probe.ok && (!probe.summary.software || want === 'webgpu')) {
      try {
        const summary = await registerWebGpu();
        if (await tf.setBackend('webgpu')) {
          await tf.ready();
          return `webgpu (${describeAdapter(summary)})`;
        }
        why = 'the webgpu backend failed to initialise';
      } catch (e) {
        why = (e as Error).message;
      }
      if (want === 'webgpu') throw new Error(`webgpu requested: ${why}`);
    } else why = probe.ok ? `webgpu only on a software adapter, used when asked for with ?backend=webgpu: ${describeAdapter(probe.summary)}` : probe.reason;
  }
  if (want === 'cpu' || want === 'webgl') {
    if (!(await tf.setBackend(want))) throw new Error(`the ${want} backend failed to initialise`);
    await tf.ready();
    return `${want} (requested)`;
  }
  setWasmPaths(new URL('./', location.href).href);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  await tf.ready();
  installWasmFixes(tf.backend());
  return `wasm${want === 'wasm' ? ' (requested)' : why ? ` (${why})` : ''}`;
}

/** The checkpoint from the site's weights manifest (TF.js's own loader), built with Model.build like Model.load. */
async function loadModel(dir: string): Promise<{ model: Model; tokenizer: Tokenizer }> {
  const [config, gen, tokJson, tokConfig, manifest] = await Promise.all([
    fetchJson<Record<string, unknown>>(`${dir}/config.json`),
    fetchOptionalJson(`${dir}/generation_config.json`),
    fetchJson<object>(`${dir}/tokenizer.json`),
    fetchJson<object>(`${dir}/tokenizer_config.json`),
    fetchJson<{ weightsManifest: tf.io.WeightsManifestConfig }>(`${dir}/model.json`),
  ]);
  const cfg = parseModelConfig(config, `${dir}/config.json`, gen ?? {});
  const tensors = await tf.io.loadWeights(manifest.weightsManifest, `${dir}/`);
  const handedOver = new Set<string>();
  const rows: ParameterRows = (spec, lo, hi) => {
    const t = tensors[spec.name];
    if (!t) throw new Error(`${dir}/model.json has no weight '${spec.name}' (config.json needs it)`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, j) => d !== spec.shape[j]))
      throw new Error(`${dir}/model.json: '${spec.name}' has shape [${t.shape}], config.json implies [${spec.shape}]`);
    if (lo === 0 && hi === spec.shape[0]) {
      handedOver.add(spec.name);
      return t;
    }
    return tf.slice(t, lo, hi - lo);
  };
  try {
    const model = await Model.build(cfg, rows, { dir });
    return { model, tokenizer: Tokenizer.fromObjects(tokJson, tokConfig, gen) };
  } finally {
    // Tensors split into vocabulary chunks (and any the config does not use) are copies' sources: free them.
    for (const [name, t] of Object.entries(tensors)) if (!handedOver.has(name)) t.dispose();
  }
}

async function loadVectors(site: SiteIndex): Promise<{ name: string; vector: PersonaVector; source: string }[]> {
  return Promise.all(
    site.vectors.map(async (v) => {
      const data = new Float32Array(await (await fetchOk(v.file)).arrayBuffer());
      const vector = new PersonaVector(data, v.shape[0], v.shape[1], v.meta);
      vector.source = v.source;
      return { name: v.name, vector, source: v.source };
    }),
  );
}

async function open(status: (s: string) => void): Promise<{ client: PlaygroundClient; site: SiteIndex }> {
  const site = await fetchJson<SiteIndex>('site.json');
  if (site.format !== SITE_FORMAT) throw new Error(`site.json is not a playground site (format ${JSON.stringify(site.format)})`);
  status('Starting TF.js…');
  const backend = await chooseBackend(new URLSearchParams(location.search).get('backend'));
  status(`Loading the model (${backend})…`);
  const { model, tokenizer } = await loadModel(site.model.path);
  const engine = new ServeEngine(model, tokenizer, await loadVectors(site));
  const client: PlaygroundClient = {
    modelDir: site.model.dir,
    neutralPrompts: site.neutralPrompts,
    describe: () => `Running in this browser: ${site.model.dir} on TF.js ${backend}`,
    vectors: async () => engine.vectorInfo(),
    chat: (body, signal) => ({
      async *[Symbol.asyncIterator]() {
        const r = await chatCompletion(engine, { ...body, stream: true }, { signal });
        if (!(Symbol.asyncIterator in (r as object))) throw new Error('chatCompletion did not stream');
        yield* r as AsyncIterable<ChatCompletionChunk>;
      },
    }),
  };
  return { client, site };
}

const statusEl = document.getElementById('status');
const opened = open((s) => {
  if (statusEl) statusEl.textContent = s;
});
void startPlayground(opened.then((o) => o.client)).catch(() => undefined);
