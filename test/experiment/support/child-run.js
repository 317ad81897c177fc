// Child process for the kill -9 tests: runs an experiment config with the test studies and, when
// KILL_AFTER is given, SIGKILLs itself after that many computed cells. A small require hook over the
// installed @swc/core compiles the TypeScript sources (jest's transform is not available outside jest).
const fs = require('fs');
const swc = require('@swc/core');
require.extensions['.ts'] = (module, filename) => {
  const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), { filename, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
  module._compile(out.code, filename);
};
require('./studies.ts');
const { loadExperiment, runExperiment } = require('../../../lib/experiment/index.ts');
const [config, outputDir, killAfter] = process.argv.slice(2);
const exp = loadExperiment(config, { outputDir, cacheDir: `${outputDir}/cache` });
runExperiment(exp, {
  progress: false,
  onCellDone: (_id, n) => { if (killAfter && n === Number(killAfter)) process.kill(process.pid, 'SIGKILL'); },
}).then(() => process.exit(0), (e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
