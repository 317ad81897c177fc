import * as path from 'node:path';
import { COHERENCE_PROMPT_NAME, fillJudgePrompt, loadJudgePrompts, LogprobJudge, selectJudgePrompt } from '../../lib/judge/judge';
import { GENERATION_PROMPT_NAME, loadGenerationPrompt, renderGenerationPrompt } from '../../lib/persona/artifacts';

const PAPER = path.resolve(__dirname, '../../../shared/paper-data');

describe('the paper\'s prompt files load as given', () => {
  test('judge_prompts.json: the coherence prompt loads, fills and drives a judge', async () => {
    const file = path.join(PAPER, 'judge_prompts.json');
    const prompts = loadJudgePrompts(file);
    const coherence = selectJudgePrompt(prompts, COHERENCE_PROMPT_NAME, file);
    const filled = fillJudgePrompt(coherence, 'What is 2+2?', 'Four.');
    expect(filled).toContain('[QUESTION START]\nWhat is 2+2?\n[QUESTION END]');
    expect(filled).toContain('[ANSWER START]\nFour.\n[ANSWER END]');
    // Python's str.format would give the same text: the file has no escaped braces, so plain replacement agrees.
    expect(filled).toBe(coherence.replace('{question}', 'What is 2+2?').replace('{answer}', 'Four.'));
    const judge = new LogprobJudge({ scorer: { id: 'fake', topLogprobs: async () => [{ token: '90', logprob: Math.log(0.5) }, { token: '100', logprob: Math.log(0.5) }] }, template: coherence });
    expect(await judge.score('q', 'a')).toBeCloseTo(95, 10);
  });

  test('artifact_generation_prompts.json renders with Python-format semantics', () => {
    const file = path.join(PAPER, 'artifact_generation_prompts.json');
    const template = loadGenerationPrompt(file, GENERATION_PROMPT_NAME);
    const p = renderGenerationPrompt(template, { trait: 'evil', description: 'actively seeks to harm' });
    expect(p).toContain('<trait>\nevil\n</trait>');
    expect(p).toContain('{question}');
    expect(p).toContain('"instruction": [\n    {"pos"');
    expect(p).not.toMatch(/\{\{|\}\}/);
    expect(p).not.toContain('{TRAIT}\n</trait>');
  });
});
