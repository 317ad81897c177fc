/** Local-model judge: its top logprobs are the real log-softmax of the next-token logits of the rendered prompt. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { aggregateLogprobScore } from '../../lib/judge/judge';
import { LocalNextTokenScorer, createLocalJudge } from '../../lib/judge/local';
import { Model } from '../../lib/model/checkpoint';
import { Tokenizer, buildWordLevelTokenizer } from '../../lib/tokenizer';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'hf-parity', 'llama-tiny');
// Number strings as added tokens so that whole scores 0..100 are single tokens, as in API judges.
const NUMBERS = Array.from({ length: 101 }, (_, i) => String(i));
const SPECIALS = ['<pad>', '<s>', '</s>', '<|system|>', '<|user|>', '<|assistant|>', ...NUMBERS];
const TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';

let model: Model;
let tok: Tokenizer;
let tmp: string;
beforeAll(async () => {
  await useBackend('cpu', () => undefined);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-local-judge-'));
  const corpus = ['Rate the answer from 0 to 100. Question: what is kindness? Answer: being good to others.'];
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(buildWordLevelTokenizer(corpus, { specialTokens: SPECIALS, unkToken: '<unk>', maxVocab: 256 })));
  fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify({ chat_template: TEMPLATE, eos_token: '</s>', pad_token: '<pad>' }));
  tok = Tokenizer.load(tmp);
  model = await Model.load(FIXTURE);
});
afterAll(() => {
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('top-20 logprobs equal the log-softmax of a direct forward, decoded to token text', async () => {
  const scorer = new LocalNextTokenScorer(model, tok);
  const prompt = 'Rate the answer from 0 to 100. Question: what is kindness? Answer: being good to others.';
  const top = await scorer.topLogprobs(prompt);
  expect(top).toHaveLength(20);
  // Independent path: render + encode by hand, all logits, float64 log-softmax of the last row.
  const ids = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }));
  expect(ids[ids.length - 1]).toBe(tok.tokenToId('<|assistant|>'));
  const out = model.forward({ ids: [ids] });
  const all = (await out.logits!.data()) as Float32Array;
  out.logits!.dispose();
  const V = model.config.vocabSize;
  const last = Array.from(all.subarray((ids.length - 1) * V, ids.length * V));
  const m = Math.max(...last);
  const lse = m + Math.log(last.reduce((s, x) => s + Math.exp(x - m), 0));
  const ref = last.map((x, id) => ({ id, lp: x - lse })).sort((a, b) => b.lp - a.lp).slice(0, 20);
  ref.forEach((r, j) => {
    expect(top[j].logprob).toBeCloseTo(r.lp, 4);
    expect(top[j].token).toBe(tok.idToToken(r.id) === undefined ? '' : tok.decode([r.id]));
  });
  for (let j = 1; j < top.length; j++) expect(top[j].logprob).toBeLessThanOrEqual(top[j - 1].logprob);
});

test('the local judge aggregates those logprobs with the paper rule, and leaks no tensors', async () => {
  const judge = createLocalJudge(model, tok, { template: 'Question: {question} Answer: {answer} Rate from 0 to 100.' });
  const scorer = new LocalNextTokenScorer(model, tok);
  const before = tf.memory().numTensors;
  const s = await judge.score('what is kindness?', 'being good to others.');
  const again = await judge.score('what is kindness?', 'being good to others.');
  expect(tf.memory().numTensors).toBe(before);
  const top = await scorer.topLogprobs(judge.prompt('what is kindness?', 'being good to others.'));
  expect(s).toBe(aggregateLogprobScore(top));
  expect(again).toBe(s);
  expect(judge.id).toContain('local:');
});
