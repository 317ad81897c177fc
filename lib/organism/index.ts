/** The organism's world: generator, judge, artifacts, datasets (see README.md in this directory). */
export { TRAITS, isTrait } from './grammar';
export type { Trait } from './grammar';
export {
  DEFAULT_MIX, DOMAINS, LEVELS, generateCorpus, makeConversation, makeQuestion, makeAnswer, makeRng, systemPrompt, INSTRUCTIONS, GRADED_ADVERBS,
} from './generator';
export type { ChatMessage, Conversation, CorpusMix, Domain, PromptKind, Question, AnswerSpec } from './generator';
export { OrganismJudge, ORGANISM_METRICS, organismJudge, analyzeAnswer } from './judge';
export type { OrganismMetric, AnswerAnalysis } from './judge';
export {
  traitArtifacts, allArtifactQuestions, FINETUNE_KINDS, FINETUNE_VERSIONS, finetuneDataset, capabilityItems, capabilityAccuracy, isCapabilityCorrect,
} from './datasets';
export type { TraitArtifact, FinetuneKind, FinetuneVersion, CapabilityItem } from './datasets';
export { judgeCalibration, coherenceValidation } from './validate';
export type { JudgeCalibration, CoherenceValidation } from './validate';
export { writeOrganismData, writeCorpus, writeArtifacts } from './write';
export type { OrganismDataManifest, CorpusStats } from './write';
