import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { startServer } from '../../lib/serve/server';
import { playgroundAssetsDir } from '../../lib/playground';
import { prepareBackend } from '../common';

interface Args {
  model: string; vectors?: string[]; backend?: string; host: string; port: number; 'api-key'?: string; 'max-batch': number; 'max-queue': number;
  'body-limit': number; 'served-model-name'?: string; playground: boolean;
}

export const serveCommand: CommandModule<object, Args> = {
  command: 'serve',
  describe: 'OpenAI-compatible server (POST /v1/chat/completions, GET /v1/models) with per-request steering, ablation and per-token monitoring (the "persona" field), continuous batching, and the playground at /',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Checkpoint directory (with tokenizer and chat template)' })
      .option('vectors', { type: 'string', array: true, describe: 'Persona vector files or directories of them (.safetensors/.pt/.gguf); requests name them by file name, or by "name" in their metadata' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to bind (0.0.0.0 exposes it to the network: use --api-key)' })
      .option('port', { type: 'number', default: 8000 })
      .option('api-key', { type: 'string', describe: 'Require "Authorization: Bearer KEY" on /v1/* (default: $PERSONA_API_KEY if set)' })
      .option('max-batch', { type: 'number', default: 32, describe: 'Requests decoded together' })
      .option('max-queue', { type: 'number', default: 256, describe: 'Requests waiting beyond the batch before 429' })
      .option('body-limit', { type: 'number', default: 1 << 20, describe: 'Largest request body in bytes (413 above)' })
      .option('served-model-name', { type: 'string', describe: 'Model id in /v1/models and requests (default: the directory name)' })
      .option('playground', { type: 'boolean', default: true, describe: 'Serve the playground page at / (--no-playground: API only)' }) as never,
  handler: async (argv) => {
    for (const flag of ['port', 'max-batch', 'max-queue', 'body-limit'] as const) {
      const v = argv[flag];
      if (!Number.isInteger(v) || v < (flag === 'port' || flag === 'max-queue' ? 0 : 1)) throw new PersonaError(`--${flag} must be a ${flag === 'port' || flag === 'max-queue' ? 'non-negative' : 'positive'} integer, got ${v}`, { field: flag });
    }
    await prepareBackend(argv);
    const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const server = await startServer({
      modelDir: argv.model,
      vectors: argv.vectors ?? [],
      host: argv.host,
      port: argv.port,
      apiKey: argv['api-key'] ?? process.env.PERSONA_API_KEY,
      maxBatch: argv['max-batch'],
      maxQueue: argv['max-queue'],
      bodyLimit: argv['body-limit'],
      modelName: argv['served-model-name'],
      playgroundDir: argv.playground ? await playgroundAssetsDir() : undefined,
      log,
    });
    const names = server.engine.vectorNames;
    log(`serving '${server.engine.modelName}' at ${server.url}/v1 (vectors: ${names.length ? names.join(', ') : 'none'})${argv.playground ? `; playground at ${server.url}/` : ''}`);
    // Runs until interrupted; Ctrl-C closes the server (in-flight requests end) and frees the model.
    await new Promise<void>((resolve) => {
      const stop = () => {
        log('shutting down');
        void server.close().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
