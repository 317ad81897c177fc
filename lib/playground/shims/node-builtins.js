/**
 * What the browser bundle gets for `fs`, `path`, `zlib`, `crypto`, `os` and their `node:` forms. Library modules
 * the page imports (model, tokenizer, persona vector) also hold file readers and writers the page never calls; the
 * page builds everything from fetched bytes. A call that reaches one of these anyway fails naming the function.
 * `path` is a real POSIX implementation of the few functions used to build names and messages.
 * (CommonJS, so that esbuild accepts any named import of it.)
 */
'use strict';
function unavailable(name) {
  return function () {
    throw new Error(name + ' is not available in the browser (the playground page reads files only through fetch)');
  };
}
const NAMES = [
  'existsSync', 'readFileSync', 'writeFileSync', 'statSync', 'lstatSync', 'openSync', 'closeSync', 'readSync', 'writeSync',
  'fsyncSync', 'mkdirSync', 'rmSync', 'renameSync', 'readdirSync', 'unlinkSync', 'copyFileSync', 'mkdtempSync', 'realpathSync',
  'createReadStream', 'createWriteStream', 'appendFileSync', 'accessSync', 'readFile', 'writeFile', 'stat',
  'createHash', 'randomBytes', 'gunzipSync', 'gzipSync', 'inflateSync', 'deflateSync', 'inflateRawSync', 'deflateRawSync',
  'tmpdir', 'homedir', 'cpus', 'totalmem', 'freemem', 'hostname', 'platform',
];
for (const n of NAMES) module.exports[n] = unavailable(n);
module.exports.promises = {};
module.exports.constants = {};

function normalizeParts(parts, absolute) {
  const out = [];
  for (const p of parts) {
    if (!p || p === '.') continue;
    if (p === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
    } else out.push(p);
  }
  return out;
}
function normalize(p) {
  const abs = p.startsWith('/');
  const s = normalizeParts(p.split('/'), abs).join('/');
  return (abs ? '/' : '') + (s || (abs ? '' : '.'));
}
module.exports.sep = '/';
module.exports.delimiter = ':';
module.exports.normalize = normalize;
module.exports.join = (...parts) => normalize(parts.filter((x) => x !== '').join('/') || '.');
module.exports.resolve = (...parts) => {
  let r = '';
  for (let i = parts.length - 1; i >= 0 && !r.startsWith('/'); i--) r = parts[i] + (r ? '/' + r : '');
  return normalize(r.startsWith('/') ? r : '/' + r);
};
module.exports.isAbsolute = (p) => p.startsWith('/');
module.exports.dirname = (p) => {
  const i = p.replace(/\/+$/, '').lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : p.slice(0, i);
};
module.exports.basename = (p, ext) => {
  const b = p.replace(/\/+$/, '').split('/').pop() || '';
  return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
};
module.exports.extname = (p) => {
  const b = module.exports.basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
};
module.exports.relative = (from, to) => to;
module.exports.posix = module.exports;
