/**
 * Shared by the browser tests: Debian's Chromium driven by playwright-core, a static file server on 127.0.0.1, a small evil vector extracted from the organism with `persona extract`, reading the
 * page's state, and screenshots under test-artifacts/playground/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser, Page, chromium } from 'playwright-core';
import type { PlaygroundState } from '../../../lib/playground/page/ui';
import { runCli } from '../../support/cli';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const ORGANISM = path.join(ROOT, 'models', 'organism');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'playground');
/** Where Debian installs Chromium; PERSONA_CHROMIUM overrides. */
export const CHROMIUM = process.env.PERSONA_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(args: string[] = []): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium) or set PERSONA_CHROMIUM; .ci/run installs it`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', ...args] });
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.wasm': 'application/wasm', '.bin': 'application/octet-stream',
};

/**
 * A static file server on 127.0.0.1 for a built site, as any static host serves it. node:http rather than
 * @fastify/static: jest's module loader cannot load that package's ES-module dependency (content-disposition 3).
 */
export async function serveStatic(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/\/$/, '/index.html');
    const file = path.join(root, path.normalize(rel));
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `persona-${name}-`));
}

/**
 * The evil vector (response_avg_diff) extracted from the organism with the quickstart's method and judge, on the
 * first `questions` extraction questions (1 sample each) to keep the test short.
 */
export async function extractEvil(dir: string, questions = 3): Promise<string> {
  const a = JSON.parse(fs.readFileSync(path.join(ORGANISM, 'artifacts', 'trait_data_extract', 'evil.json'), 'utf8'));
  const file = path.join(dir, 'evil_extract.json');
  fs.writeFileSync(file, JSON.stringify({ ...a, questions: a.questions.slice(0, questions) }));
  const out = path.join(dir, 'extract');
  const r = await runCli(['extract', '--model', ORGANISM, '--trait', 'evil', '--artifacts', file, '--out', out, '--judge', 'organism', '--samples', '1', '--max-new-tokens', '40', '--batch-size', '16'], 'wasm');
  if (r.code !== 0) throw new Error(`persona extract failed: ${r.stderr}`);
  // Named as a file the quickstart would write; served and listed as 'evil'.
  const vector = path.join(dir, 'evil.safetensors');
  fs.copyFileSync(path.join(out, 'evil_response_avg_diff.safetensors'), vector);
  fs.copyFileSync(path.join(out, 'evil_response_avg_diff.safetensors.json'), `${vector}.json`);
  return vector;
}

/** Collects page errors and failed requests so that a test can show them. */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return problems;
}

export async function waitFor(page: Page, states: string[], timeout = 60_000): Promise<string> {
  await page.waitForSelector(states.map((s) => `#status[data-state=${s}]`).join(', '), { timeout });
  const state = await page.getAttribute('#status', 'data-state');
  if (state === 'error') throw new Error(`the page reports: ${await page.textContent('#status')}`);
  return state!;
}

export interface ViewInput {
  user: string;
  system?: string;
  maxTokens: number;
  seed: number;
  coef: number;
  layer: number;
  monitorLayer: number;
  compare: boolean;
  /** Default 0 (greedy). */
  temperature?: number;
  /** Monitor evil at monitorLayer (default true). */
  monitor?: boolean;
}

/** Sets the controls as a user would (fill, select, the slider by keyboard) and submits with Ctrl+Enter. */
export async function generateIn(page: Page, v: ViewInput): Promise<PlaygroundState> {
  await page.fill('#system', v.system ?? '');
  await page.fill('#user', v.user);
  await page.fill('#max-tokens', String(v.maxTokens));
  await page.fill('#temperature', String(v.temperature ?? 0));
  await page.fill('#seed', String(v.seed));
  await page.selectOption('#v0-layer', String(v.layer));
  // The slider by keyboard: Home = −4, then one step (0.25) per ArrowRight.
  const slider = page.locator('#v0-coef');
  await slider.focus();
  await page.keyboard.press('Home');
  for (let i = 0; i < (v.coef + 4) / 0.25; i++) await page.keyboard.press('ArrowRight');
  if (Number(await slider.inputValue()) !== v.coef) throw new Error(`slider at ${await slider.inputValue()}, wanted ${v.coef}`);
  if (v.monitor === false) await page.selectOption('#monitor-vector', '');
  else {
    await page.selectOption('#monitor-vector', 'evil');
    await page.selectOption('#monitor-layer', String(v.monitorLayer));
  }
  await page.setChecked('#compare', v.compare);
  await page.focus('#user');
  await page.keyboard.press('Control+Enter');
  await waitFor(page, ['done']);
  return page.evaluate(() => (window as unknown as { playground: PlaygroundState }).playground);
}

/** Per pane: the tokens' background colours and projections, the number of points in its chart, its command. */
export async function paneView(page: Page): Promise<{ steered: boolean; colours: string[]; projections: number[]; points: number; text: string; command: string }[]> {
  return page.$$eval('.pane', (panes) =>
    panes.map((p) => ({
      steered: (p as HTMLElement).dataset.steered === 'true',
      colours: [...p.querySelectorAll<HTMLElement>('.token')].map((t) => t.style.backgroundColor),
      projections: [...p.querySelectorAll<HTMLElement>('.token')].map((t) => Number(t.dataset.projection)),
      points: p.querySelectorAll('.chart .mark-symbol path').length,
      text: p.querySelector('.answer')!.textContent ?? '',
      command: p.querySelector('.command')!.textContent ?? '',
    })),
  );
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

export const maxAbsDiff = (a: readonly number[], b: readonly number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** Splits a command line as the page quotes it (plain words, '…' quoted, \\' an escaped quote) into arguments. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /\\'|'([^']*)'|([^\s'\\]+)|(\s+)/gy;
  let word: string | null = null;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(line))) {
    end = re.lastIndex;
    if (m[3] !== undefined) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + (m[1] ?? m[2] ?? "'");
  }
  if (end < line.length) throw new Error(`cannot split at ${end}: ${line}`);
  if (word !== null) words.push(word);
  return words;
}

/** Runs the `persona generate …` command a pane shows (in-process, on wasm) and returns the text it printed. */
export async function runShownCommand(command: string): Promise<string> {
  const args = shellWords(command);
  if (args[0] !== 'persona' || args[1] !== 'generate') throw new Error(`not a persona generate command: ${command}`);
  const r = await runCli(args.slice(1), 'wasm');
  if (r.code !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}
