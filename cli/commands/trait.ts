import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { AnthropicClient } from '../../lib/llm/anthropic';
import { OpenAIClient } from '../../lib/llm/openai';
import { generateArtifacts, loadGenerationPrompt, writeArtifacts } from '../../lib/persona/artifacts';
import { printTable } from './extract';

interface Args { action: string; name: string; description: string; out: string; provider: string; 'llm-model': string; 'base-url'?: string; 'generation-prompt'?: string; 'question-instruction'?: string; retries: number; 'max-tokens': number }

export const traitCommand: CommandModule<object, Args> = {
  command: 'trait <action> <name>',
  describe: 'trait new NAME --description TEXT: generate extraction + evaluation artifacts with an LLM',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['new'] })
      .positional('name', { type: 'string' })
      .option('description', { type: 'string', demandOption: true })
      .option('out', { type: 'string', default: '.', describe: 'Directory receiving trait_data_extract/ and trait_data_eval/' })
      .option('provider', { type: 'string', choices: ['anthropic', 'openai'], default: 'anthropic' })
      .option('llm-model', { type: 'string', demandOption: true })
      .option('base-url', { type: 'string' })
      .option('generation-prompt', { type: 'string', describe: "The paper's artifact_generation_prompts.json (default: the project's own prompt)" })
      .option('question-instruction', { type: 'string' })
      .option('retries', { type: 'number', default: 3 })
      .option('max-tokens', { type: 'number', default: 16000 }) as never,
  handler: async (argv) => {
    if (!argv.description.trim()) throw new PersonaError('--description is empty', { field: 'description' });
    const client = argv.provider === 'anthropic' ? new AnthropicClient({ model: argv['llm-model'], baseURL: argv['base-url'] }) : new OpenAIClient({ model: argv['llm-model'], baseURL: argv['base-url'] });
    const a = await generateArtifacts({
      trait: argv.name, description: argv.description, client, maxRetries: argv.retries, questionInstruction: argv['question-instruction'],
      promptTemplate: argv['generation-prompt'] ? loadGenerationPrompt(argv['generation-prompt']) : undefined, chatOptions: { maxTokens: argv['max-tokens'] },
    });
    const files = writeArtifacts(argv.out, argv.name, a);
    printTable([['split', 'questions', 'file'], ['extract', a.extract.questions.length, files.extract], ['eval', a.eval.questions.length, files.eval]]);
  },
};
