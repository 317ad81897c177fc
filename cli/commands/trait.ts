import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { AnthropicClient } from '../../lib/llm/anthropic';
import { resolveEndpoint } from '../../lib/llm/endpoint';
import { OpenAIClient } from '../../lib/llm/openai';
import { generateArtifacts, loadGenerationPrompt, writeArtifacts } from '../../lib/persona/artifacts';
import { printTable } from './extract';

interface Args { action: string; name: string; description: string; out: string; provider: string; 'llm-model': string; 'base-url'?: string; 'generation-prompt'?: string; 'question-instruction'?: string; retries: number; 'max-tokens': number }

export const traitCommand: CommandModule<object, Args> = {
  command: 'trait <action> <name>',
  describe: 'trait new NAME --description TEXT: generate extraction + evaluation artifacts with an LLM',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['new'], describe: "What to do ('new': generate a trait's artifacts)" })
      .positional('name', { type: 'string', describe: 'Trait name; the artifacts are written as <name>.json' })
      .option('description', { type: 'string', demandOption: true, describe: 'What the trait means, in a sentence or two' })
      .option('out', { type: 'string', default: '.', describe: 'Directory receiving trait_data_extract/ and trait_data_eval/' })
      .option('provider', { type: 'string', choices: ['anthropic', 'openai'], default: 'anthropic', describe: 'API of --llm-model: anthropic (needs ANTHROPIC_API_KEY) or OpenAI-compatible (OPENAI_API_KEY for api.openai.com)' })
      .option('llm-model', { type: 'string', demandOption: true, describe: 'Model that writes the artifacts (e.g. claude-3-7-sonnet-latest)' })
      .option('base-url', { type: 'string', describe: 'API base URL (default $ANTHROPIC_BASE_URL / $OPENAI_BASE_URL, else the provider\'s API)' })
      .option('generation-prompt', { type: 'string', describe: "The paper's artifact_generation_prompts.json (default: the project's own prompt)" })
      .option('question-instruction', { type: 'string', describe: 'Extra instruction for the questions the model writes' })
      .option('retries', { type: 'number', default: 3, describe: 'New generations when the reply is not valid artifact JSON' })
      .option('max-tokens', { type: 'number', default: 16000, describe: 'Reply token limit per generation' }) as never,
  handler: async (argv) => {
    if (!argv.description.trim()) throw new PersonaError('--description is empty', { field: 'description' });
    // Keys and base URL are checked here, before any request (the clients check the same, naming no flag).
    const endpoint = { baseURL: argv['base-url'] };
    resolveEndpoint(argv.provider === 'anthropic' ? 'anthropic' : 'openai', endpoint, { baseURL: '--base-url', localHint: '--base-url' });
    const client = argv.provider === 'anthropic' ? new AnthropicClient({ model: argv['llm-model'], ...endpoint }) : new OpenAIClient({ model: argv['llm-model'], ...endpoint });
    const a = await generateArtifacts({
      trait: argv.name, description: argv.description, client, maxRetries: argv.retries, questionInstruction: argv['question-instruction'],
      promptTemplate: argv['generation-prompt'] ? loadGenerationPrompt(argv['generation-prompt']) : undefined, chatOptions: { maxTokens: argv['max-tokens'] },
    });
    const files = writeArtifacts(argv.out, argv.name, a);
    printTable([['split', 'questions', 'file'], ['extract', a.extract.questions.length, files.extract], ['eval', a.eval.questions.length, files.eval]]);
  },
};
