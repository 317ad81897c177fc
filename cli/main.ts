#!/usr/bin/env node
/**
 * The `persona` command line: each command parses its flags, calls one library function and prints.
 * Errors the user can fix (PersonaError) print one line and exit 1; --verbose adds the stack.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { PersonaError } from '../lib/errors';
import { commands } from './commands';

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    let parser = yargs(argv)
      .scriptName('persona')
      .option('backend', { type: 'string', choices: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'], describe: 'TF.js backend (also env PERSONA_BACKEND); auto: tfjs-node-gpu, tfjs-node, webgpu on a hardware GPU, wasm, cpu (software GPU adapters only when webgpu is named)' })
      .option('verbose', { type: 'boolean', default: false, describe: 'Print stack traces with errors' })
      .strict()
      .demandCommand(1, 'Name a command; see --help.')
      .recommendCommands()
      .help()
      // A flag that takes one value given twice (two --prompt) is refused instead of becoming a list no command expects.
      .middleware(((args: Record<string, unknown>, y: unknown) => {
        const o = (y as unknown as { getOptions(): { key: Record<string, unknown>; array: string[] } }).getOptions();
        for (const k of Object.keys(o.key)) {
          const v = args[k];
          if (Array.isArray(v) && !o.array.includes(k)) throw new PersonaError(`--${k} was given ${v.length} times; it takes one value`, { field: k });
        }
      }) as never, true)
      .fail((msg, err) => {
        throw err ?? new PersonaError(msg);
      });
    for (const c of commands) parser = parser.command(c);
    await parser.parseAsync();
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof PersonaError || !verbose) process.stderr.write(`persona: ${err.message}\n`);
    if (verbose) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `persona … | head`: the reader has all it wanted, so a closed stdout ends the run quietly and successfully.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  main(hideBin(process.argv)).then((code) => {
    process.exitCode = code;
  });
}
