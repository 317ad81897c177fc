// Child process for the kill -9 resume test: runs a training config and SIGKILLs itself after step
// KILL_AFTER_STEP. A 6-line require hook over the installed @swc/core compiles the TypeScript sources
// (no ts-node/tsx in the project; jest's own transform is not available outside jest).
const fs = require('fs');
const swc = require('@swc/core');
require.extensions['.ts'] = (module, filename) => {
  const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), { filename, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
  module._compile(out.code, filename);
};
const { readTrainConfig } = require('../../../lib/train/config.ts');
const { runTraining } = require('../../../lib/train/trainer.ts');
const [configFile, killAfter] = process.argv.slice(2);
const { config } = readTrainConfig(configFile);
runTraining(config, { onStep: (s) => { if (s.step === Number(killAfter)) process.kill(process.pid, 'SIGKILL'); } })
  .catch((e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
