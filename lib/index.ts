/**
 * The public API, in the order the method uses it: engine → trainer → pipeline → organism → experiments.
 * Every CLI command is a thin layer over one of these functions.
 */
export { PersonaError } from './errors';
export { useBackend, checkFitsInMemory, webgpuAdapter } from './backend';
export type { BackendRequest, GpuAdapterSummary } from './backend';
export { readValues } from './backend/read';

// Engine
export { Model, parameterSpecs } from './model/checkpoint';
export { randomModel, shapeConfig } from './model/random';
export { readModelConfig, FAMILIES } from './model/config';
export type { ModelConfig } from './model/config';
export { forward, WEIGHT_NAMES } from './model/transformer';
export { siteForLayer } from './model/hooks';
export type { Hook, HookFn, SiteName } from './model/hooks';
export { steer, ablate, interventionHooks } from './model/interventions';
export type { Intervention, Positions } from './model/interventions';
export { generate } from './model/generate';
export { captureActivations, meanOverSequences, hiddenStateSite } from './model/capture';
export { Tokenizer } from './tokenizer';

// Trainer
export { runTraining } from './train/trainer';
export { readTrainConfig, parseTrainConfig } from './train/config';
export { trainStep } from './train/step';
export { loadAdapter, saveAdapter, mergeAdapterIntoCheckpoint } from './train/peft';

// The method
export { PersonaVector, project, EXTRACTION_METHODS } from './persona/vector';
export type { ExtractionMethod } from './persona/vector';
export * as stats from './persona/stats';
export { readArtifacts, generateArtifacts, writeArtifacts } from './persona/artifacts';
export { extractPersonaVector, vectorsFromRollouts } from './persona/extract';
export { pcaDiffDirection, probeDirection } from './persona/directions';
export { evaluateSteering } from './persona/evaluate';
export { monitorProjections } from './persona/monitor';
export { finetuningShift } from './persona/shift';
export { screenDataset } from './persona/screen';
export type { Judge } from './judge/judge';
export { LogprobJudge } from './judge/judge';
export { createOpenAIJudge, createCoherenceJudge } from './judge/openai-logprob';
export { createLocalJudge } from './judge/local';

// The organism and experiments
export { OrganismJudge } from './organism/judge';
export { measureCapability, organismReport } from './organism/report';
export { loadExperiment, runExperiment } from './experiment';
export { estimateExperiment, estimateTraining } from './experiment/estimate';
