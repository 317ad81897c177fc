import { PersonaError } from '../errors';

/**
 * JSON-over-HTTP with the failure handling every LLM API needs: per-request timeout, retries with
 * exponential backoff + jitter on 429 / 5xx / timeouts / network errors / malformed bodies (honouring
 * Retry-After), a concurrency limit, and one PersonaError after the last attempt naming URL and status.
 */
export interface RetryOptions {
  /** Retries after the first attempt (total attempts = maxRetries + 1). */
  maxRetries?: number;
  /** First backoff delay; doubles each retry. Tests use a few ms. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Upper bound on a server-requested Retry-After wait, so a bad header cannot stall a run for hours. */
  retryAfterMaxMs?: number;
  /** Per-attempt timeout (connect + full body). */
  timeoutMs?: number;
  /** Shared limiter: at most N requests in flight across everything that uses it. */
  limiter?: Semaphore;
}

export const DEFAULT_RETRY: Required<Omit<RetryOptions, 'limiter'>> = {
  maxRetries: 6,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  retryAfterMaxMs: 120_000,
  timeoutMs: 60_000,
};

/** A tiny FIFO semaphore; p-limit is ESM-only, which this CommonJS build cannot require. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new PersonaError(`concurrency limit must be a positive integer, got ${limit}`, { field: 'concurrency' });
  }
  get inFlight(): number {
    return this.active;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter so `active` never over-counts.
      if (next) next();
      else this.active--;
    }
  }
}

/** Why an attempt failed; `retryable` decides whether another attempt is made. */
interface AttemptFailure {
  reason: string;
  status?: number;
  retryable: boolean;
  retryAfterMs?: number;
}

const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 529]);

/**
 * POST `body` as JSON to `url` and return `parse(json)`. `parse` validates the response shape and throws
 * on a malformed body, which counts as a retryable failure (APIs occasionally return truncated bodies).
 */
export async function postJson<T>(
  url: string,
  body: unknown,
  opts: RetryOptions & { headers?: Record<string, string>; parse: (json: unknown) => T },
): Promise<T> {
  const o = { ...DEFAULT_RETRY, ...stripUndefined(opts) };
  const payload = JSON.stringify(body);
  let last: AttemptFailure | undefined;
  for (let attempt = 0; attempt <= o.maxRetries; attempt++) {
    if (attempt > 0) await sleep(backoffDelay(attempt - 1, o.backoffBaseMs, o.backoffMaxMs, last?.retryAfterMs, o.retryAfterMaxMs));
    const run = () => attemptOnce(url, payload, opts.headers ?? {}, o.timeoutMs, opts.parse);
    const result = opts.limiter ? await opts.limiter.run(run) : await run();
    if (result.ok) return result.value;
    last = result.failure;
    if (!last.retryable) break;
  }
  const attempts = last?.retryable ? o.maxRetries + 1 : undefined;
  const status = last?.status !== undefined ? ` (HTTP ${last.status})` : '';
  const tries = attempts !== undefined ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
  throw new PersonaError(`request to ${url} failed${tries}${status}: ${last?.reason ?? 'unknown error'}`);
}

type AttemptResult<T> = { ok: true; value: T } | { ok: false; failure: AttemptFailure };

async function attemptOnce<T>(
  url: string,
  payload: string,
  headers: Record<string, string>,
  timeoutMs: number,
  parse: (json: unknown) => T,
): Promise<AttemptResult<T>> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload, signal: controller.signal });
      // The timeout also covers reading the body: a server that stalls mid-body is as dead as one that never answers.
      text = await res.text();
    } catch (err) {
      if (controller.signal.aborted) return fail({ reason: `timed out after ${timeoutMs} ms`, retryable: true });
      return fail({ reason: `network error: ${describeError(err)}`, retryable: true });
    }
    if (!res.ok) {
      const hint = res.status === 401 || res.status === 403 ? ' (check the API key environment variable)' : '';
      return fail({
        reason: `${res.status} ${res.statusText}${hint}: ${excerpt(text)}`,
        status: res.status,
        retryable: RETRYABLE_STATUS.has(res.status),
        retryAfterMs: parseRetryAfter(res.headers),
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return fail({ reason: `malformed JSON body: ${excerpt(text)}`, status: res.status, retryable: true });
    }
    try {
      return { ok: true, value: parse(json) };
    } catch (err) {
      return fail({ reason: `unexpected response shape: ${describeError(err)}`, status: res.status, retryable: true });
    }
  } finally {
    clearTimeout(timer);
  }
}

function fail(failure: AttemptFailure): { ok: false; failure: AttemptFailure } {
  return { ok: false, failure };
}

/** Full-jitter exponential backoff (delay uniform in [d/2, d]); a Retry-After from the server wins if longer. */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, retryAfterMs?: number, retryAfterMaxMs = Infinity): number {
  const d = Math.min(maxMs, baseMs * 2 ** retry);
  const jittered = d / 2 + Math.random() * (d / 2);
  if (retryAfterMs === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, retryAfterMaxMs));
}

/** Retry-After is seconds or an HTTP date; OpenAI also sends retry-after-ms. */
export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}…` : t || '(empty body)';
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    const code = cause && typeof cause === 'object' && 'code' in cause ? ` (${String((cause as { code: unknown }).code)})` : '';
    return `${err.message}${code}`;
  }
  return String(err);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
