/** `process` for the browser bundle: library code reads process.env for optional settings (none set in a page). */
export const process = { env: {}, versions: {}, platform: 'browser', arch: 'wasm', argv: [], cwd: () => '/', pid: 0 };
