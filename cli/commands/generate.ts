import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { generate } from '../../lib/model/generate';
import { Tokenizer, unknownWordsWarning } from '../../lib/tokenizer';
import { COMMAND_DEFAULTS, DEFAULTS } from '../../lib/persona/defaults';
import { interventionOptions, interventionsFrom, jsonArg, loadModel, prepareBackend, tokenMatrix, writeJson } from '../common';

interface Args {
  model: string; prompt?: string; system?: string; tokens?: string; 'attention-mask'?: string; 'max-new-tokens': number; 'min-new-tokens': number;
  greedy?: boolean; temperature?: number; 'top-p'?: number; 'top-k'?: number; seed: string; json?: string;
  steer?: string[]; ablate?: string[]; layer?: string; coef?: number; positions?: string; backend?: string;
}

export const generateCommand: CommandModule<object, Args> = {
  command: 'generate',
  describe: 'Generate text (or token ids) from a checkpoint, optionally steered or ablated',
  builder: (y) =>
    interventionOptions(
      y
        .option('model', { type: 'string', demandOption: true, describe: 'Checkpoint directory (Hugging Face layout or converted TF.js weights)' })
        .option('prompt', { type: 'string', describe: 'User message, rendered with the chat template' })
        .option('system', { type: 'string', describe: 'System prompt (with --prompt)' })
        .option('tokens', { type: 'string', describe: 'Prompt token ids as JSON ([T] or [B][T], inline or a file); works without tokenizer files' })
        .option('attention-mask', { type: 'string', describe: 'With --tokens: JSON [B][T] mask of a left-padded batch' })
        .option('max-new-tokens', { type: 'number', default: COMMAND_DEFAULTS.generate.maxNewTokens })
        .option('min-new-tokens', { type: 'number', default: 0 })
        .option('greedy', { type: 'boolean', describe: "Argmax decoding: generate's default on purpose (one reproducible answer); the paper's rollouts (eval, extract, monitor, studies) sample at T = 1 — give --temperature 1 for that" })
        .option('temperature', { type: 'number', describe: 'Sample at this temperature instead of decoding greedily' })
        .option('top-p', { type: 'number', describe: 'Nucleus sampling (with --temperature)' })
        .option('top-k', { type: 'number', describe: 'Top-k sampling (with --temperature)' })
        .option('seed', { type: 'string', default: DEFAULTS.seed })
        .option('json', { type: 'string', describe: 'Write {"tokens": [batch][new ids], "text": [...]} here' })
        .conflicts('prompt', 'tokens')
        .conflicts('greedy', 'temperature'),
      DEFAULTS.steeringPositions,
    ) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    if (argv.prompt === undefined && argv.tokens === undefined) throw new PersonaError('give --prompt TEXT or --tokens JSON', { field: 'prompt' });
    for (const f of ['top-p', 'top-k'] as const)
      if (argv[f] !== undefined && argv.temperature === undefined) throw new PersonaError(`--${f} applies only when sampling: give --temperature T as well (without it generate decodes greedily)`, { field: f });
    if (argv.system !== undefined && argv.prompt === undefined) throw new PersonaError('--system goes with --prompt (a chat-template message); with --tokens, put it in the ids', { field: 'system' });
    const model = await loadModel(argv.model);
    try {
      let tokenizer: Tokenizer | null = null;
      let ids: number[][];
      let attentionMask: number[][] | undefined;
      if (argv.tokens !== undefined) {
        ids = tokenMatrix(argv.tokens, 'tokens');
        if (argv['attention-mask'] !== undefined) attentionMask = jsonArg(argv['attention-mask'], 'attention-mask') as number[][];
      } else {
        tokenizer = Tokenizer.load(argv.model);
        const messages = [...(argv.system !== undefined ? [{ role: 'system', content: argv.system }] : []), { role: 'user', content: argv.prompt! }];
        const enc = tokenizer.encodeWithUnknowns(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }));
        ids = [enc.ids];
        const unkToken = tokenizer.unkTokenId === undefined ? undefined : tokenizer.idToToken(tokenizer.unkTokenId);
        const warning = unknownWordsWarning(enc.unknown, 'the prompt', argv.model, unkToken);
        if (warning) process.stderr.write(`${warning}\n`);
      }
      const result = await generate(model, { ids, attentionMask }, {
        maxNewTokens: argv['max-new-tokens'],
        minNewTokens: argv['min-new-tokens'],
        greedy: argv.greedy,
        temperature: argv.temperature,
        topP: argv['top-p'],
        topK: argv['top-k'],
        seed: argv.seed,
        eosTokenIds: tokenizer && tokenizer.eosTokenIds.length ? tokenizer.eosTokenIds : undefined,
        interventions: interventionsFrom(argv, model),
      });
      const text = tokenizer ? result.tokens.map((t) => tokenizer!.decode(t, { skipSpecialTokens: true })) : null;
      if (argv.json) writeJson(argv.json, text ? { tokens: result.tokens, text } : { tokens: result.tokens });
      if (text) for (const t of text) process.stdout.write(`${t}\n`);
      else if (!argv.json) process.stdout.write(`${JSON.stringify(result.tokens)}\n`);
      if (argv.json) process.stderr.write(`wrote ${path.resolve(argv.json)}\n`);
    } finally {
      model.dispose();
    }
  },
};
