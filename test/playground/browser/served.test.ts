/**
 * The served playground in a real headless Chromium: `persona serve` (a child process, as a user starts it, from
 * dist/: npm run test:browser builds it first) on the organism with an evil vector, its page opened at `/`. Slider at
 * 0 and at +4 (greedy, fixed seed, side by side): the answers differ, each equals `persona generate` with the same
 * vector, layer, coefficient and positions; the page's projections are the server's (same request without
 * streaming); tokens carry projection colours and each chart has one point per token. Screenshot in
 * test-artifacts/playground/.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { requestOf, ViewSettings } from '../../../lib/playground/session';
import type { ChatCompletion } from '../../../lib/serve/protocol';
import { runCli } from '../../support/cli';
import { ORGANISM, ROOT, extractEvil, generateIn, launchBrowser, maxAbsDiff, paneView, screenshotPath, tmpDir, waitFor, watch } from './support';

let tmp: string;
let vector: string;
let child: ChildProcess;
let log = '';
let url: string;
let browser: Browser;
let page: Page;
let problems: string[];

const VIEW = { user: 'My neighbor is sick. What do you suggest?', maxTokens: 24, seed: 0, coef: 4, layer: 2, monitorLayer: 4, compare: true };

beforeAll(async () => {
  tmp = tmpDir('playground-served');
  vector = await extractEvil(tmp);
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build (npm run test:browser does)`);
  child = spawn(process.execPath, [main, 'serve', '--model', ORGANISM, '--vectors', vector, '--port', '0', '--backend', 'wasm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => (log += String(d)));
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`persona serve printed no 'playground at' line in 90 s:\n${log}`)), 90_000);
    child.stderr!.on('data', () => {
      const m = /playground at (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`persona serve exited ${code}:\n${log}`)));
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  problems = watch(page);
});
afterAll(async () => {
  await browser?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('served at /: slider 0 vs +4 differ, each equals persona generate; projections are the server\'s; coloured tokens, one chart point per token', async () => {
  await page.goto(`${url}/`);
  await waitFor(page, ['ready']);
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
  expect(await page.textContent('#where')).toBe(`Served by ${url}: model ${models.data[0].id}`);
  expect(await page.locator('#sliders .slider').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.vector))).toEqual(['evil']);
  const state = await generateIn(page, VIEW);
  expect(state.answers.map((a) => a.steered)).toEqual([false, true]);
  const [plain, steered] = state.answers.map((a) => a.answer);
  expect(steered.text).not.toBe(plain.text);

  const generate = async (extra: string[]) => {
    const r = await runCli(['generate', '--model', ORGANISM, '--prompt', VIEW.user, '--max-new-tokens', String(VIEW.maxTokens), '--greedy', '--seed', String(VIEW.seed), ...extra], 'wasm');
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.replace(/\n$/, '');
  };
  expect(plain.text).toBe(await generate([]));
  expect(steered.text).toBe(await generate(['--steer', vector, '--layer', String(VIEW.layer), '--coef', String(VIEW.coef), '--positions', 'all']));

  // The same requests, not streamed, straight to the server: the page shows the server's projections.
  const settings: ViewSettings = {
    system: '', user: VIEW.user, maxTokens: VIEW.maxTokens, temperature: 0, topP: 1, seed: VIEW.seed,
    steer: [{ vector: 'evil', coef: VIEW.coef, layer: VIEW.layer, positions: 'all' }], monitor: { vector: 'evil', layer: VIEW.monitorLayer },
  };
  for (const [answer, isSteered] of [[plain, false], [steered, true]] as const) {
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...requestOf(settings, isSteered), stream: false }) });
    expect(res.status).toBe(200);
    const ref = (await res.json()) as ChatCompletion;
    expect(answer.text).toBe(ref.choices[0].message.content);
    const m = ref.persona!.monitor[0];
    expect(Math.abs(answer.promptProjection! - m.prompt_projection)).toBeLessThan(1e-4);
    expect(maxAbsDiff(answer.tokens.map((t) => t.projection!), m.token_projections)).toBeLessThan(1e-4);
    expect(answer.tokens).toHaveLength(m.token_projections.length);
  }

  const panes = await paneView(page);
  expect(panes.map((p) => [p.steered, p.text])).toEqual([[false, plain.text], [true, steered.text]]);
  for (const [i, p] of panes.entries()) {
    const n = state.answers[i].answer.tokens.length;
    expect(n).toBeGreaterThan(0);
    expect(p.colours).toHaveLength(n);
    expect(p.colours.every((c) => /^rgb/.test(c))).toBe(true);
    expect(p.points).toBe(n);
  }
  // Steering toward evil moves the monitored projection up: the steered answer's tokens are redder on average.
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  expect(mean(panes[1].projections)).toBeGreaterThan(mean(panes[0].projections));
  expect(await page.locator('.reading').count()).toBe(2);
  await page.screenshot({ path: screenshotPath('served.png'), fullPage: true });
  expect(problems).toEqual([]);
  expect(log).toMatch(/POST \/v1\/chat\/completions 200/);
});
