/** The package entry point exposes the method's functions (and loads without side effects on the backend). */
import * as persona from '../lib';

test('public API: engine, trainer, pipeline, organism and experiment functions are exported', () => {
  for (const name of ['useBackend', 'generate', 'steer', 'ablate', 'captureActivations', 'runTraining', 'trainStep', 'extractPersonaVector', 'evaluateSteering', 'monitorProjections', 'finetuningShift', 'screenDataset', 'createOpenAIJudge', 'createLocalJudge', 'measureCapability', 'organismReport', 'loadExperiment', 'runExperiment'] as const)
    expect(typeof persona[name]).toBe('function');
  for (const cls of [persona.Model, persona.Tokenizer, persona.PersonaVector, persona.OrganismJudge, persona.PersonaError]) expect(typeof cls).toBe('function');
  expect(typeof persona.stats.pearson).toBe('function');
  expect(Object.keys(persona.FAMILIES)).toEqual(['LlamaForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'MistralForCausalLM']);
});
