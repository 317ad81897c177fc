// Four suites: `unit` runs on a fresh clone; `conformance` reads ../shared (read-only reference data); `webgpu` runs
// the model on TF.js's WebGPU backend through Dawn (needs a Vulkan driver Dawn accepts; see .ci/run); `browser` runs
// the playground in headless Chromium (needs Debian's chromium; see .ci/run).
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] };
module.exports = {
  projects: [
    { displayName: 'unit', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/conformance/', '<rootDir>/test/webgpu/', '<rootDir>/test/playground/browser/'] },
    { displayName: 'conformance', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/conformance/**/*.test.ts'] },
    { displayName: 'webgpu', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/webgpu/**/*.test.ts'] },
    // The playground in headless Chromium (playwright-core; Debian's chromium, installed by .ci/run).
    { displayName: 'browser', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/playground/browser/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
