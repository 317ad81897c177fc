/**
 * Issue 12: rows judged before a judge failure survive in the cache's work directory, where the rerun
 * (the same cache key) finds them and continues without re-judging them. A real HTTP judge on 127.0.0.1
 * that fails after N requests, the organism model, the studies' cachedRollouts on a Cache.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../../lib/backend';
import { PersonaError } from '../../lib/errors';
import { Cache } from '../../lib/experiment/cache';
import { cachedRollouts } from '../../lib/experiment/studies/shared/cached';
import type { LoadedModel, StudyEnv } from '../../lib/experiment/studies/shared/cell';
import { createOpenAIJudge } from '../../lib/judge/openai-logprob';
import { Model } from '../../lib/model/checkpoint';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { Tokenizer } from '../../lib/tokenizer';
import { CHAT_PATH, LlmTestServer } from '../support/llm-server';
import { REPO, tmpDir } from './helpers';

const ORGANISM = path.join(REPO, 'models/organism');

describe('judge failure mid-rollouts', () => {
  let server: LlmTestServer;
  let org: LoadedModel;
  beforeAll(async () => {
    await useBackend('cpu', () => undefined);
    server = await LlmTestServer.start();
    org = { dir: ORGANISM, model: await Model.load(ORGANISM), tokenizer: Tokenizer.load(ORGANISM), fingerprint: 'organism-test' };
  });
  afterAll(async () => {
    org?.model.dispose();
    await server.close();
  });

  test('rows judged before the failure are kept where the rerun finds them; the rerun judges only the rest', async () => {
    const FAIL_AFTER = 4; // batch 0 (2 rows × 2 judges) is judged, then every request fails
    let n = 0;
    let down = true;
    server.setFallback(CHAT_PATH, () => (down && ++n > FAIL_AFTER ? { kind: 'status', status: 503 } : { kind: 'chat', content: 'x', topLogprobs: [{ token: '40', logprob: -0.01 }] }));
    const cache = new Cache(tmpDir('judge-fail'));
    const env: StudyEnv = { cache, shared: (_k, create) => create() };
    const client = { model: 'judge-m', baseURL: server.url + '/v1', maxRetries: 0, backoffBaseMs: 1, concurrency: 2 };
    // A new client per run, as a rerun is a new process.
    const judges = () => ({ trait: createOpenAIJudge({ client, template: 'Evil? {question} {answer}', name: 'evil' }), coherence: createOpenAIJudge({ client, template: 'Coherent? {question} {answer}', name: 'coh' }) });
    // Distinct questions: every row needs its own two judge requests.
    const items = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({ question: `What is ${i} plus ${i + 1}?`, questionId: `q${i}` }));
    const spec = () => ({ trait: 'evil', judges: judges(), items, maxNewTokens: 3, temperature: 1, batchSize: 2, seed: 's' });

    const err = await cachedRollouts(env, org, spec()).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/judging failed after 2 of 8 rows \(finished rows are kept in the CSV; rerun to continue\)/);
    // The CSV the message names exists after the failure (before the fix it sat in a deleted .tmp- folder).
    const csv = (err as PersonaError).place.file!;
    expect(err!.message.startsWith(csv)).toBe(true);
    expect(fs.existsSync(csv)).toBe(true);
    const kept = readRolloutsCsv(csv, 'evil').rows;
    expect(kept).toHaveLength(2);
    expect(path.basename(path.dirname(csv))).toMatch(/^\.partial-/);

    down = false;
    const before = server.count(CHAT_PATH);
    const { rows, csv: final } = await cachedRollouts(env, org, spec());
    expect(rows).toHaveLength(8);
    expect(rows.slice(0, 2)).toEqual(kept);
    // No request for a finished row; each unfinished row judged (trait and coherence).
    const resent = server.requests.slice(before).filter((r) => r.path === CHAT_PATH).map((r) => r.body.messages[0].content as string);
    for (const r of kept) expect(resent.filter((p) => p.includes(r.question))).toEqual([]);
    for (const r of rows.slice(2)) expect(resent.filter((p) => p.includes(r.question)).length).toBeGreaterThanOrEqual(2);
    expect(path.basename(path.dirname(final))).not.toMatch(/^\./); // the entry, renamed into place
    expect(fs.existsSync(path.dirname(csv))).toBe(false);
  }, 120_000);
});
