import { PersonaError } from '../errors';

/**
 * Where a client sends requests and with which key, checked before any work: an unset key for the
 * provider's own API or a malformed base URL would otherwise surface only after minutes of retries
 * (as "fetch failed"). Each error is one line naming the flag or variable to fix.
 */
export type Provider = 'openai' | 'anthropic';

const PROVIDERS: Record<Provider, { baseEnv: string; keyEnv: string; defaultBase: string; host: string }> = {
  openai: { baseEnv: 'OPENAI_BASE_URL', keyEnv: 'OPENAI_API_KEY', defaultBase: 'https://api.openai.com/v1', host: 'api.openai.com' },
  anthropic: { baseEnv: 'ANTHROPIC_BASE_URL', keyEnv: 'ANTHROPIC_API_KEY', defaultBase: 'https://api.anthropic.com', host: 'api.anthropic.com' },
};

export interface ResolvedEndpoint {
  /** Base URL without trailing slashes. */
  base: string;
  apiKey?: string;
}

export interface EndpointNames {
  /** How the caller's `baseURL` was given, for messages (e.g. "--judge-base-url"); default "baseURL". */
  baseURL?: string;
  /** What to suggest for a local server when the key is missing (e.g. "--judge-base-url"). */
  localHint?: string;
}

/**
 * Base URL: `baseURL`, else $<P>_BASE_URL, else the provider's API; it must be an absolute http(s) URL.
 * Key: `apiKey`, else $<P>_API_KEY (empty counts as unset). Only the provider's own host requires one:
 * local and self-hosted OpenAI-compatible servers (vLLM, llama.cpp) take requests without a key.
 */
export function resolveEndpoint(provider: Provider, opts: { baseURL?: string; apiKey?: string }, names: EndpointNames = {}): ResolvedEndpoint {
  const p = PROVIDERS[provider];
  const envBase = nonEmpty(process.env[p.baseEnv]);
  const given = nonEmpty(opts.baseURL);
  const raw = given ?? envBase ?? p.defaultBase;
  const source = given !== undefined ? (names.baseURL ?? 'baseURL') : envBase !== undefined ? p.baseEnv : undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PersonaError(`${source} is not a URL: '${raw}' (expected e.g. ${p.defaultBase})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PersonaError(`${source} must be an http:// or https:// URL, got '${raw}'`);
  const apiKey = nonEmpty(opts.apiKey) ?? nonEmpty(process.env[p.keyEnv]);
  if (apiKey === undefined && url.hostname.toLowerCase() === p.host) {
    const local = names.localHint ? ` (or point ${names.localHint} at a local server, which needs none)` : '';
    throw new PersonaError(`${p.keyEnv} is not set; ${raw} needs it${local}`);
  }
  return { base: raw.replace(/\/+$/, ''), apiKey };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s !== undefined && s.trim() !== '' ? s : undefined;
}
