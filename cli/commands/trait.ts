import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { AnthropicClient } from '../../lib/llm/anthropic';
import { resolveEndpoint } from '../../lib/llm/endpoint';
import { OpenAIClient } from '../../lib/llm/openai';
import type { ChatClient } from '../../lib/llm/types';
import {
  generateArtifacts, generateGradedPrompts, loadGenerationPrompt, manyShotFromRollouts, readManyShotExamples, readTraitArtifacts, updateTraitArtifacts, writeArtifacts,
} from '../../lib/persona/artifacts';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { printTable } from './extract';

interface Args {
  action: string; name: string; description?: string; out: string; provider: string; 'llm-model'?: string; 'base-url'?: string; 'generation-prompt'?: string;
  'question-instruction'?: string; retries: number; 'max-tokens': number; 'graded-prompts': boolean; from?: string;
}

const ACTIONS = ['new', 'graded-prompts', 'many-shot'];

function client(argv: Args): ChatClient {
  if (!argv['llm-model']) throw new PersonaError(`trait ${argv.action} needs --llm-model (the model that writes the prompts)`, { field: 'llm-model' });
  if (!argv.description?.trim()) throw new PersonaError(`trait ${argv.action} needs --description (what the trait means)`, { field: 'description' });
  // Keys and base URL are checked here, before any request (the clients check the same, naming no flag).
  const endpoint = { baseURL: argv['base-url'] };
  resolveEndpoint(argv.provider === 'anthropic' ? 'anthropic' : 'openai', endpoint, { baseURL: '--base-url', localHint: '--base-url' });
  return argv.provider === 'anthropic' ? new AnthropicClient({ model: argv['llm-model'], ...endpoint }) : new OpenAIClient({ model: argv['llm-model'], ...endpoint });
}

export const traitCommand: CommandModule<object, Args> = {
  command: 'trait <action> <name>',
  describe:
    'trait new NAME --description TEXT: generate extraction + evaluation artifacts (and the 8 graded monitoring prompts) with an LLM; ' +
    'trait graded-prompts NAME: add the 8 graded system prompts to existing artifacts; trait many-shot NAME --from FILE: add many-shot examples',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ACTIONS, describe: "'new': generate a trait's artifacts; 'graded-prompts': add the monitoring study's 8 graded system prompts to existing artifacts; 'many-shot': add many-shot examples from --from" })
      .positional('name', { type: 'string', describe: 'Trait name; the artifacts are <out>/trait_data_{extract,eval}/<name>.json' })
      .option('description', { type: 'string', describe: 'What the trait means, in a sentence or two (new, graded-prompts)' })
      .option('out', { type: 'string', default: '.', describe: 'Artifact directory (holding trait_data_extract/ and trait_data_eval/)' })
      .option('provider', { type: 'string', choices: ['anthropic', 'openai'], default: 'anthropic', describe: 'API of --llm-model: anthropic (needs ANTHROPIC_API_KEY) or OpenAI-compatible (OPENAI_API_KEY for api.openai.com)' })
      .option('llm-model', { type: 'string', describe: 'Model that writes the artifacts (e.g. claude-3-7-sonnet-latest); new and graded-prompts' })
      .option('base-url', { type: 'string', describe: 'API base URL (default $ANTHROPIC_BASE_URL / $OPENAI_BASE_URL, else the provider\'s API)' })
      .option('generation-prompt', { type: 'string', describe: "The paper's artifact_generation_prompts.json (default: the project's own prompt)" })
      .option('question-instruction', { type: 'string', describe: 'Extra instruction for the questions the model writes' })
      .option('graded-prompts', { type: 'boolean', default: true, describe: 'new: also generate the 8 graded system prompts of the monitoring study (--no-graded-prompts: only the paper\'s fields)' })
      .option('from', { type: 'string', describe: "many-shot: examples from a JSONL ({question, answer} or {messages}) or a judged rollouts CSV (answers with score ≥ 50 and coherence ≥ 50, e.g. the extraction's <trait>_pos_instruct.csv)" })
      .option('retries', { type: 'number', default: 3, describe: 'New generations when the reply is not valid JSON' })
      .option('max-tokens', { type: 'number', default: 16000, describe: 'Reply token limit per generation' }) as never,
  handler: async (argv) => {
    if (argv.action === 'many-shot') {
      if (!argv.from) throw new PersonaError('trait many-shot needs --from FILE (.jsonl of {question, answer} / {messages}, or a judged rollouts .csv)', { field: 'from' });
      readTraitArtifacts(argv.out, argv.name); // both files exist and are valid before anything is read
      const examples = argv.from.toLowerCase().endsWith('.csv') ? manyShotFromRollouts(readRolloutsCsv(argv.from, argv.name).rows) : readManyShotExamples(argv.from);
      if (!examples.length) throw new PersonaError('no answer has trait score ≥ 50 and coherence ≥ 50', { file: argv.from });
      const files = updateTraitArtifacts(argv.out, argv.name, { many_shot_examples: examples });
      printTable([['split', 'many-shot examples', 'file'], ['extract', examples.length, files.extract], ['eval', examples.length, files.eval]]);
      return;
    }
    const llm = client(argv);
    const chatOptions = { maxTokens: argv['max-tokens'] };
    if (argv.action === 'graded-prompts') {
      const a = readTraitArtifacts(argv.out, argv.name);
      const graded = await generateGradedPrompts({ trait: argv.name, description: argv.description!, instruction: a.eval.instruction, client: llm, maxRetries: argv.retries, chatOptions });
      const files = updateTraitArtifacts(argv.out, argv.name, { graded_system_prompts: graded });
      printTable([['split', 'graded system prompts', 'file'], ['extract', graded.length, files.extract], ['eval', graded.length, files.eval]]);
      return;
    }
    const a = await generateArtifacts({
      trait: argv.name, description: argv.description!, client: llm, maxRetries: argv.retries, questionInstruction: argv['question-instruction'],
      promptTemplate: argv['generation-prompt'] ? loadGenerationPrompt(argv['generation-prompt']) : undefined, chatOptions,
    });
    if (argv['graded-prompts']) {
      const graded = await generateGradedPrompts({ trait: argv.name, description: argv.description!, instruction: a.eval.instruction, client: llm, maxRetries: argv.retries, chatOptions });
      a.extract.graded_system_prompts = graded;
      a.eval.graded_system_prompts = graded;
    }
    const files = writeArtifacts(argv.out, argv.name, a);
    const g = a.eval.graded_system_prompts?.length ?? 0;
    printTable([['split', 'questions', 'graded prompts', 'file'], ['extract', a.extract.questions.length, g, files.extract], ['eval', a.eval.questions.length, g, files.eval]]);
  },
};
