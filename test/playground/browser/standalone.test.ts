/**
 * The standalone playground in a real headless Chromium (wasm backend): `persona playground build` on the organism
 * with an evil vector, served by a static file server, opened, and used as a reader would. Greedy answers equal
 * `persona generate` (unsteered, and steered at +4 with the same vector, layer and positions); the monitored
 * projections equal those of the server's engine in Node (lib/serve/chat.ts on wasm) to 1e-4; every token is
 * coloured and each chart has one point per token. Screenshots go to test-artifacts/playground/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { useBackend } from '../../../lib/backend';
import { SiteIndex } from '../../../lib/playground';
import { requestOf, ViewSettings } from '../../../lib/playground/session';
import { chatCompletion } from '../../../lib/serve/chat';
import { ServeEngine } from '../../../lib/serve/engine';
import { loadServeEngine } from '../../../lib/serve/server';
import type { ChatCompletion } from '../../../lib/serve/protocol';
import { runCli } from '../../support/cli';
import { ORGANISM, extractEvil, generateIn, launchBrowser, maxAbsDiff, paneView, runShownCommand, screenshotPath, serveStatic, tmpDir, waitFor, watch } from './support';

let tmp: string;
let vector: string;
let site: string;
let server: { url: string; close: () => Promise<void> };
let browser: Browser;
let page: Page;
let problems: string[];
let engine: ServeEngine;
let buildOutput: string;

const VIEW = { user: 'My neighbor is sick. What do you suggest?', maxTokens: 24, seed: 0, coef: 4, layer: 2, monitorLayer: 4, compare: true };

function dirBytes(dir: string): number {
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((s, e) => s + (e.isDirectory() ? dirBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
}

beforeAll(async () => {
  tmp = tmpDir('playground-standalone');
  vector = await extractEvil(tmp);
  site = path.join(tmp, 'site');
  // The model as a reader would name it (relative to the repository), so the page's commands read naturally.
  const r = await runCli(['playground', 'build', '--model', path.relative(process.cwd(), ORGANISM) || ORGANISM, '--vectors', vector, '--out', site], null);
  if (r.code !== 0) throw new Error(`persona playground build failed: ${r.stderr}`);
  buildOutput = r.stdout;
  server = await serveStatic(site);
  // WebGPU on (Chromium's SwiftShader adapter): the page must still pick wasm unless webgpu is asked for.
  browser = await launchBrowser(['--enable-unsafe-webgpu']);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  problems = watch(page);
  await useBackend('wasm', () => undefined);
  engine = await loadServeEngine(ORGANISM, [vector]);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  engine?.close();
  engine?.model.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('persona playground build writes a complete static site for the organism, under 15 MB', () => {
  const index = JSON.parse(fs.readFileSync(path.join(site, 'site.json'), 'utf8')) as SiteIndex;
  expect(index.vectors.map((v) => [v.name, v.shape])).toEqual([['evil', [7, 128]]]);
  for (const f of ['index.html', 'playground.js', 'playground.css', 'tfjs-backend-wasm-simd.wasm', 'model/model.json', 'model/config.json', 'model/tokenizer.json', 'model/tokenizer_config.json', index.vectors[0].file])
    expect(fs.existsSync(path.join(site, f))).toBe(true);
  expect(JSON.parse(fs.readFileSync(path.join(site, 'model', 'tokenizer_config.json'), 'utf8')).chat_template).toContain('<|im_start|>');
  const bytes = dirBytes(site);
  expect(bytes).toBeLessThan(15e6);
  expect(buildOutput).toContain(`${(bytes / 1e6).toFixed(1)} MB`);
});

test('in the browser (wasm): greedy text equals persona generate, unsteered and at +4; projections equal the server engine to 1e-4', async () => {
  const t0 = Date.now();
  await page.goto(`${server.url}/`);
  await waitFor(page, ['ready']);
  expect(await page.textContent('#where')).toMatch(/on TF\.js wasm \(webgpu only on a software adapter, used when asked for with \?backend=webgpu: .*software adapter/);
  const state = await generateIn(page, VIEW);
  const loadAndRun = Date.now() - t0;
  expect(state.answers.map((a) => a.steered)).toEqual([false, true]);
  const [plain, steered] = state.answers.map((a) => a.answer);

  // Each pane shows the persona generate command that reproduces it: run it as shown.
  const shown = await paneView(page);
  const model = path.relative(process.cwd(), ORGANISM) || ORGANISM;
  const base = `persona generate --model ${model} --prompt 'My neighbor is sick. What do you suggest?' --max-new-tokens 24 --greedy --seed 0`;
  expect(shown.map((p) => p.command)).toEqual([base, `${base} --steer ${vector} --layer ${VIEW.layer} --coef ${VIEW.coef} --positions all`]);
  expect(plain.text).toBe(await runShownCommand(shown[0].command));
  expect(steered.text).toBe(await runShownCommand(shown[1].command));
  expect(steered.text).not.toBe(plain.text);

  // The same requests through the server's chat completions in Node, on wasm.
  const settings: ViewSettings = {
    system: '', user: VIEW.user, maxTokens: VIEW.maxTokens, temperature: 0, topP: 1, seed: 0,
    steer: [{ vector: 'evil', coef: VIEW.coef, layer: VIEW.layer, positions: 'all' }], monitor: { vector: 'evil', layer: VIEW.monitorLayer },
  };
  for (const [answer, isSteered] of [[plain, false], [steered, true]] as const) {
    const ref = (await chatCompletion(engine, { ...requestOf(settings, isSteered), stream: false })) as ChatCompletion;
    expect(answer.text).toBe(ref.choices[0].message.content);
    const m = ref.persona!.monitor[0];
    expect(Math.abs(answer.promptProjection! - m.prompt_projection)).toBeLessThan(1e-4);
    expect(answer.tokens.map((t) => t.id)).toEqual(ref.persona!.tokens.map((t) => t.id));
    expect(answer.tokens).toHaveLength(m.token_projections.length);
    expect(maxAbsDiff(answer.tokens.map((t) => t.projection!), m.token_projections)).toBeLessThan(1e-4);
  }

  // What the reader sees: coloured tokens, one chart point per token, the prompt reading, the legend.
  const panes = await paneView(page);
  expect(panes.map((p) => p.text)).toEqual([plain.text, steered.text]);
  for (const [i, p] of panes.entries()) {
    const n = state.answers[i].answer.tokens.length;
    expect(p.colours).toHaveLength(n);
    expect(p.colours.every((c) => /^rgb/.test(c))).toBe(true);
    expect(p.points).toBe(n);
  }
  const readings = await page.locator('.reading').allTextContents();
  expect(readings).toHaveLength(2);
  for (const r of readings) expect(r).toMatch(/^Last prompt token: -?\d+\.\d{3} on evil @ layer 4 — this prompt (pushes (toward|away from) evil: [+−]\d+\.\d σ (above|below) neutral prompts|is like neutral prompts on evil: [+−]\d+\.\d σ from their mean)/);
  expect(await page.isVisible('#legend')).toBe(true);
  await page.screenshot({ path: screenshotPath('standalone.png'), fullPage: true });
  expect(problems).toEqual([]);
  process.stderr.write(`standalone playground: page load + side-by-side generation ${(loadAndRun / 1000).toFixed(1)} s\n`);
});

test('sampling with a seed (slider at 0: one pane): the shown command reproduces the answer', async () => {
  const state = await generateIn(page, { ...VIEW, coef: 0, seed: 5, temperature: 0.9, compare: true });
  expect(state.answers.map((a) => a.steered)).toEqual([false]);
  const [pane] = await paneView(page);
  expect(pane.command).toContain('--temperature 0.9 --seed 5');
  expect(state.answers[0].answer.text).toBe(await runShownCommand(pane.command));
  // Another seed, another answer (the seed reaches the sampler).
  const other = await generateIn(page, { ...VIEW, coef: 0, seed: 6, temperature: 0.9, compare: true });
  expect(other.answers[0].answer.text).not.toBe(state.answers[0].answer.text);
  expect(problems).toEqual([]);
});

test('Stop ends a long answer mid-stream; the next one runs', async () => {
  // Steered at +4 the organism repeats one word and never reaches EOS: 200 tokens unless stopped.
  await page.fill('#max-tokens', '200');
  await page.selectOption('#monitor-vector', '');
  await page.setChecked('#compare', false);
  await page.click('#generate');
  await page.waitForFunction(() => document.querySelectorAll('.pane .token').length >= 3);
  await page.click('#stop');
  expect(await waitFor(page, ['done'])).toBe('done');
  expect(await page.textContent('#status')).toMatch(/^Stopped: \d+ tokens in/);
  const n = await page.locator('.pane .token').count();
  expect(n).toBeLessThan(200);
  const again = await generateIn(page, { ...VIEW, maxTokens: 4, compare: false });
  expect(again.answers.map((a) => [a.steered, a.answer.tokens.length])).toEqual([[true, 4]]);
  expect(problems).toEqual([]);
});

test('webgpu, asked for with ?backend=webgpu on the software adapter, answers as wasm does', async () => {
  const p = await browser.newPage();
  try {
    const gpuProblems = watch(p);
    await p.goto(`${server.url}/?backend=webgpu`);
    await waitFor(p, ['ready']);
    expect(await p.textContent('#where')).toMatch(/on TF\.js webgpu \(.*software adapter/);
    // One token, unmonitored: SwiftShader compiles every kernel's shader on the CPU (~20 s for the prefill's).
    const state = await generateIn(p, { ...VIEW, maxTokens: 1, coef: 0, monitor: false });
    const [pane] = await paneView(p);
    expect(state.answers[0].answer.tokens).toHaveLength(1);
    expect(state.answers[0].answer.text).toBe(await runShownCommand(pane.command));
    expect(gpuProblems).toEqual([]);
  } finally {
    await p.close();
  }
});

test('every control has a label; at phone width nothing overflows sideways', async () => {
  const unlabelled = await page.$$eval('input, select, textarea', (els) => els.filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.id));
  expect(unlabelled).toEqual([]);
  await page.setViewportSize({ width: 390, height: 844 });
  // The charts follow their container when the window narrows (Vega-Lite width 'container', re-laid out on resize).
  await page.waitForFunction(() => document.documentElement.scrollWidth <= 390, null, { timeout: 10_000 }).catch(() => undefined);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: screenshotPath('standalone-phone.png'), fullPage: true });
});
