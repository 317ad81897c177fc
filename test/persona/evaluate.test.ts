import { summarizeScores, steeringSettings, evaluationItems } from '../../lib/persona/evaluate';
import { RolloutRow } from '../../lib/persona/rollouts-csv';

const row = (score: number | null, coherence: number | null): RolloutRow => ({ question: 'q', prompt: 'p', answer: 'a', question_id: 'id', score, coherence });

test('mean and standard error over judged rows, refusals excluded', () => {
  const s = summarizeScores([row(10, 90), row(20, null), row(null, 70), row(30, 80)]);
  expect(s).toMatchObject({ rows: 4, traitN: 3, traitMean: 20, coherenceN: 3, coherenceMean: 80 });
  expect(s.traitStderr).toBeCloseTo(10 / Math.sqrt(3), 12); // sd 10 (n−1), / √3
  expect(s.coherenceStderr).toBeCloseTo(10 / Math.sqrt(3), 12);
  expect(summarizeScores([]).traitMean).toBeNaN();
});

test('coefficient sweep: 0 is unsteered, others steer at the layer', () => {
  const v = new Float32Array([1, 0]);
  const s = steeringSettings(v, 3, [0, 2], 'response', 4);
  expect(s[0]).toMatchObject({ label: 'unsteered', interventions: [] });
  expect(s[1].label).toBe('L3_coef2_response');
  expect(s[1].interventions[0]).toMatchObject({ op: 'add', site: 'blocks.2.resid_post', coef: 2, positions: 'response' });
  expect(evaluationItems({ instruction: [], questions: ['a', 'b'], eval_prompt: '' }, 't', 3)).toHaveLength(6);
});
