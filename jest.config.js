// Two suites: `unit` runs on a fresh clone; `conformance` reads ../shared (read-only reference data).
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] };
module.exports = {
  projects: [
    { displayName: 'unit', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/conformance/'] },
    { displayName: 'conformance', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/conformance/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
