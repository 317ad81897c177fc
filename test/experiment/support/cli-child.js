// Child process for the kill -9 test of `persona run`: the CLI (cli/main.ts) with the arguments given, compiled
// by a small require hook over the installed @swc/core (jest's transform is not available outside jest).
const fs = require('fs');
const swc = require('@swc/core');
require.extensions['.ts'] = (module, filename) => {
  const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), { filename, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
  module._compile(out.code, filename);
};
const { main } = require('../../../cli/main.ts');
main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
