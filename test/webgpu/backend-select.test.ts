/**
 * Asking for webgpu where it cannot run, and `auto` on a machine whose only adapter is a software one: each gives
 * one line saying what was found and what to install (the program as installed, in fresh processes).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const bin = path.resolve(__dirname, '../../dist/cli/main.js');
const ORGANISM = path.resolve(__dirname, '../../models/organism');
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';

function persona(backend: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, [bin, 'generate', '--model', ORGANISM, '--prompt', 'What is 2 plus 3?', '--max-new-tokens', '2', '--backend', backend], {
    encoding: 'utf8',
    env: { ...process.env, PERSONA_BACKEND: '', ...env },
  });
  // Dawn itself may print native diagnostics (Vulkan loader errors, limit warnings) before our line.
  const ours = r.stderr.split('\n').filter((l) => /^(persona|backend):/.test(l));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ours };
}

test('webgpu asked for but the package is missing: one line naming the package and the install command', () => {
  const r = persona('webgpu', { PERSONA_WEBGPU_PACKAGE: 'no-such-dawn-package' });
  expect(r.status).toBe(1);
  expect(r.ours).toEqual([expect.stringMatching(/backend 'webgpu' requested but the optional package 'no-such-dawn-package' \(Dawn for Node\) is not installed: run `npm install no-such-dawn-package`/)]);
  expect(r.stderr).not.toMatch(/\n\s+at .*\.js/);
});

test('webgpu asked for where no GPU adapter exists: one line saying so and which driver to install', () => {
  const r = persona('webgpu', { VK_ICD_FILENAMES: '/nonexistent-icd.json' });
  expect(r.status).toBe(1);
  expect(r.ours).toEqual([expect.stringMatching(/found no GPU adapter; on Linux install the GPU's Vulkan driver .*mesa-vulkan-drivers ≥ 24.*or use backend wasm/)]);
});

(fs.existsSync(LAVAPIPE) ? test : test.skip)('auto with only a software adapter uses wasm and says why; webgpu by name uses the software adapter', () => {
  const auto = persona('auto', { VK_ICD_FILENAMES: LAVAPIPE });
  expect(auto.status).toBe(0);
  expect(auto.ours).toEqual([expect.stringMatching(/^backend: wasm \(.*only a software GPU adapter \(llvmpipe.*\), used only with --backend webgpu\)$/)]);
  const named = persona('webgpu', { VK_ICD_FILENAMES: LAVAPIPE });
  expect(named.status).toBe(0);
  expect(named.ours).toEqual([expect.stringMatching(/^backend: webgpu \(requested; .*llvmpipe.*; software adapter; max binding \d+ MiB, \d+ storage buffers per stage\)$/)]);
  // Same greedy answer on both.
  expect(named.stdout).toBe(auto.stdout);
});
