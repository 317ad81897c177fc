/**
 * `persona serve`: the OpenAI-compatible HTTP server (Fastify) in front of a ServeEngine.
 *   POST /v1/chat/completions   chat completions (+ stream, logprobs, usage, the `persona` extension)
 *   GET  /v1/models             the served model
 *   GET  /v1/persona/vectors    the vectors requests can steer, ablate and monitor with
 *   GET  /                      the playground page, when it is built
 * Errors are OpenAI-shaped JSON; one log line per request (id, status, tokens, ms).
 */
import * as fs from 'fs';
import * as path from 'path';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PersonaError } from '../errors';
import { readModelConfig } from '../model/config';
import { Model, parameterSpecs } from '../model/checkpoint';
import { checkFitsInMemory } from '../backend';
import { Tokenizer } from '../tokenizer';
import { PersonaVector } from '../persona/vector';
import { ApiError, chatCompletion } from './chat';
import { ServeEngine, ServeEngineOptions, ServeVector, servedName } from './engine';
import type { ChatCompletion, ChatCompletionChunk } from './protocol';

export interface ServerOptions {
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** Requests must send `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Largest request body in bytes (413 above; default 1 MiB). */
  bodyLimit?: number;
  /** One line per request and per server event (default: none). */
  log?: (line: string) => void;
  /** A directory with the playground page (index.html), served at `/`. */
  playgroundDir?: string;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  engine: ServeEngine;
  close(): Promise<void>;
}

/** Loads the model, tokenizer and vectors (files, or directories of .safetensors/.pt/.gguf files) for serving. */
export async function loadServeEngine(modelDir: string, vectorPaths: readonly string[], opts: ServeEngineOptions = {}): Promise<ServeEngine> {
  const files: string[] = [];
  for (const p of vectorPaths) {
    if (!fs.existsSync(p)) throw new PersonaError('no such vector file or directory', { file: p });
    if (fs.statSync(p).isDirectory()) {
      const inDir = fs.readdirSync(p).filter((f) => /\.(safetensors|pt|gguf)$/i.test(f)).sort().map((f) => path.join(p, f));
      if (inDir.length === 0) throw new PersonaError('directory has no .safetensors, .pt or .gguf vectors', { file: p });
      files.push(...inDir);
    } else files.push(p);
  }
  const cfg = readModelConfig(modelDir);
  const vectors: ServeVector[] = files.map((file) => {
    const vector = PersonaVector.load(file, { numLayers: cfg.numLayers });
    return { name: servedName(vector, file), vector, source: file };
  });
  const n = parameterSpecs(cfg).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  checkFitsInMemory(n * 4, `model ${modelDir}: ${(n * 4 / 1e9).toFixed(2)} GB of float32 weights`);
  const tokenizer = Tokenizer.load(modelDir);
  const model = await Model.load(modelDir);
  try {
    return new ServeEngine(model, tokenizer, vectors, { ...opts, modelName: opts.modelName ?? path.basename(path.resolve(modelDir)), modelRoot: path.resolve(modelDir) });
  } catch (e) {
    model.dispose();
    throw e;
  }
}

const errorJson = (e: ApiError) => e.body;

/** Maps anything thrown while handling a request to an ApiError. */
function apiErrorOf(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const fe = e as { code?: string; statusCode?: number; message?: string };
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'the request body is too large', 'invalid_request_error', null, 'request_too_large');
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, `unsupported content type: send application/json`, 'invalid_request_error', null, 'unsupported_media_type');
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new ApiError(400, 'the request body is empty; send a JSON object', 'invalid_request_error', null, 'invalid_json');
  if (fe.statusCode === 400 || fe.code === 'FST_ERR_CTP_INVALID_JSON' || e instanceof SyntaxError) return new ApiError(400, `the request body is not valid JSON: ${fe.message ?? ''}`, 'invalid_request_error', null, 'invalid_json');
  if (e instanceof PersonaError) return new ApiError(400, e.message, 'invalid_request_error', e.place.field ?? null);
  return new ApiError(500, `internal error: ${fe.message ?? String(e)}`, 'server_error');
}

export function createServer(engine: ServeEngine, opts: ServerOptions = {}): FastifyInstance {
  const log = opts.log ?? (() => {});
  const app = Fastify({ bodyLimit: opts.bodyLimit ?? 1 << 20, logger: false, return503OnClosing: true });
  const started = new WeakMap<FastifyRequest, { t0: number; tokens: number }>();

  app.addHook('onRequest', async (req, reply) => {
    started.set(req, { t0: performance.now(), tokens: 0 });
    if (opts.apiKey && req.url.startsWith('/v1/') && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      const e = new ApiError(401, req.headers.authorization ? 'Incorrect API key provided' : 'Missing API key: send Authorization: Bearer KEY', 'invalid_request_error', null, 'invalid_api_key');
      return reply.code(401).send(errorJson(e));
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const s = started.get(req);
    log(`${req.id} ${req.method} ${req.url} ${reply.statusCode} tokens=${s?.tokens ?? 0} ${Math.round(performance.now() - (s?.t0 ?? performance.now()))}ms`);
  });
  app.setErrorHandler((err, _req, reply) => {
    const e = apiErrorOf(err);
    if (e.retryAfter !== undefined) reply.header('Retry-After', String(e.retryAfter));
    return reply.code(e.status).send(errorJson(e));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorJson(new ApiError(404, `no route ${req.method} ${req.url}`, 'invalid_request_error', null, 'not_found'))));

  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: engine.modelName, object: 'model', created: 0, owned_by: 'persona', ...(engine.modelRoot ? { root: engine.modelRoot } : {}) }] }));
  app.get('/v1/persona/vectors', async () => ({ object: 'list', data: engine.vectorInfo() }));
  app.get('/health', async () => ({ status: 'ok', ...engine.batcher.load }));

  app.post('/v1/chat/completions', async (req, reply) => {
    // The client going away (its socket closing before the response is done) frees its row at the next step.
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    const result = await chatCompletion(engine, req.body, { signal: gone.signal });
    const stat = started.get(req)!;
    if (!isStream(result)) {
      stat.tokens = result.usage.completion_tokens;
      return result;
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    try {
      for await (const chunk of result) {
        if (chunk.persona?.token || chunk.choices[0]?.delta.content) stat.tokens += chunk.persona?.token ? 1 : 0;
        if (gone.signal.aborted) break;
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      }
      if (!gone.signal.aborted) res.write('data: [DONE]\n\n');
    } catch (e) {
      // Headers are sent: the error goes in the stream, as OpenAI does.
      if (!gone.signal.aborted) res.write(`data: ${JSON.stringify(errorJson(apiErrorOf(e)))}\n\n`);
    } finally {
      res.end();
      log(`${req.id} stream ${gone.signal.aborted ? 'client gone' : 'done'} tokens=${stat.tokens} ${Math.round(performance.now() - stat.t0)}ms`);
    }
  });

  if (opts.playgroundDir) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    void app.register(require('@fastify/static'), { root: path.resolve(opts.playgroundDir), prefix: '/', index: ['index.html'] });
  }
  return app;
}

function isStream(r: ChatCompletion | AsyncIterable<ChatCompletionChunk>): r is AsyncIterable<ChatCompletionChunk> {
  return typeof (r as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/** Starts a server on an engine; `close()` stops it (the engine stays open). */
export async function listen(engine: ServeEngine, opts: ServerOptions = {}): Promise<RunningServer> {
  const app = createServer(engine, opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 8000 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { url, app, engine, close: () => app.close() };
}

/** Loads everything and listens: what `persona serve` runs. `close()` also frees the model. */
export async function startServer(opts: ServerOptions & { modelDir: string; vectors?: readonly string[] } & ServeEngineOptions): Promise<RunningServer> {
  const engine = await loadServeEngine(opts.modelDir, opts.vectors ?? [], opts);
  try {
    const s = await listen(engine, opts);
    return {
      ...s,
      close: async () => {
        await s.close();
        engine.close();
        engine.model.dispose();
      },
    };
  } catch (e) {
    engine.close();
    engine.model.dispose();
    throw e;
  }
}
