/** `persona serve` as a user starts it (a child process, the README's command) and `persona bench serve`. */
import { spawn } from 'child_process';
import * as path from 'path';
import { runCli } from '../support/cli';

const ROOT = path.join(__dirname, '../..');
const ORGANISM = path.join(ROOT, 'models/organism');

test('persona serve: starts, answers curl-style requests, logs one line per request, stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'serve', '--model', ORGANISM, '--port', '0', '--no-playground', '--backend', 'wasm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'serving' line in 60 s:\n${err}`)), 60_000);
      child.stderr.on('data', () => {
        const m = /serving 'organism' at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}:\n${err}`)));
    });
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'tell me about cats' }], temperature: 0, max_tokens: 8 }) });
    expect(res.status).toBe(200);
    const j = await res.json();
    expect(j.choices[0].message.content.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(err).toMatch(/POST \/v1\/chat\/completions 200 tokens=\d+ \d+ms/);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code).toBe(0);
  expect(err).toMatch(/shutting down/);
});

test('persona bench serve: concurrent vs one at a time, same texts', async () => {
  const r = await runCli(['bench', 'serve', '--model', ORGANISM, '--clients', '6', '--new-tokens', '8'], 'wasm');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.clients).toBe(6);
  for (const mode of [j.concurrent, j.sequential]) {
    expect(mode.requests).toBe(6);
    expect(mode.tokens).toBeGreaterThan(0);
    expect(mode.latencyP99Ms).toBeGreaterThanOrEqual(mode.latencyP50Ms);
  }
  expect(j.concurrent.tokens).toBe(j.sequential.tokens);
  expect(j.sameText).toBe(true);
  expect(j.maxBatchRows).toBeGreaterThan(1);
});

test('persona serve refuses bad flags before loading anything', async () => {
  const r = await runCli(['serve', '--model', ORGANISM, '--max-batch', '0'], 'wasm');
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/--max-batch must be a positive integer, got 0/);
});
