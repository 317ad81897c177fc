/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The playground's front end, shared by the served and the standalone page: it sees only a PlaygroundClient.
 * Chat with a streamed answer, one slider per vector (coefficient, layer, positions), a monitor that colours every
 * token by its projection (diverging scale centred on the mean over unsteered answers to neutral prompts) with a
 * line chart per answer (Vega-Lite via vega-embed), the last prompt token's projection with a one-line reading
 * against neutral prompts, unsteered and steered side by side, seeds and the `persona generate` command.
 */
import embed from 'vega-embed';
import { scheme } from 'vega';
import type { PersonaPositions, VectorInfo } from '../../serve/protocol';
import type { PlaygroundClient } from '../client';
import {
  Answer, AnswerToken, DEFAULT_NEUTRAL_PROMPTS, NeutralStats, ViewSettings, defaultLayer, neutralStats, promptReading,
  reproduceCommand, requestOf, streamAnswer, zScore,
} from '../session';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};
const POSITIONS: PersonaPositions[] = ['all', 'prompt', 'response'];

/** What a test (or a curious reader) can inspect: the last run's answers and statistics. */
export interface PlaygroundState {
  vectors: VectorInfo[];
  answers: { steered: boolean; answer: Answer; seed: number }[];
  neutral: NeutralStats | null;
  center: number | null;
}

interface Pane {
  steered: boolean;
  root: HTMLElement;
  reading: HTMLElement;
  answer: HTMLElement;
  chart: HTMLElement;
  tokens: AnswerToken[];
  promptProjection: number | null;
}

export async function startPlayground(client: PlaygroundClient | Promise<PlaygroundClient>): Promise<void> {
  const state: PlaygroundState = { vectors: [], answers: [], neutral: null, center: null };
  (window as unknown as { playground: PlaygroundState }).playground = state;
  const status = $('status');
  const setStatus = (s: 'loading' | 'ready' | 'running' | 'done' | 'error', text: string) => {
    status.dataset.state = s;
    status.textContent = text;
    status.classList.toggle('error', s === 'error');
  };

  let c: PlaygroundClient;
  try {
    c = await client;
    state.vectors = await c.vectors();
    $('where').textContent = c.describe();
    $<HTMLTextAreaElement>('neutral').value = (c.neutralPrompts ?? DEFAULT_NEUTRAL_PROMPTS).join('\n');
  } catch (e) {
    setStatus('error', `Could not start: ${(e as Error).message}`);
    throw e;
  }
  buildVectorControls(state.vectors);
  setStatus('ready', 'Ready.');

  const neutralCache = new Map<string, Promise<NeutralStats>>();
  let controller: AbortController | null = null;

  const form = $<HTMLFormElement>('controls');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run();
  });
  for (const id of ['system', 'user']) {
    $(id).addEventListener('keydown', (ev) => {
      const k = ev as KeyboardEvent;
      if (k.key === 'Enter' && (k.ctrlKey || k.metaKey)) {
        k.preventDefault();
        form.requestSubmit();
      }
    });
  }
  $('stop').addEventListener('click', () => controller?.abort());
  $('new-seed').addEventListener('click', () => {
    $<HTMLInputElement>('seed').value = String(Math.floor(Math.random() * 2 ** 31));
  });

  /**
   * Neutral statistics for a monitor (cached per vector, layer and list of neutral prompts). Not tied to a run's
   * abort signal: a later run that stops this one may be waiting for the same statistics.
   */
  function neutralFor(monitor: { vector: string; layer: number }): Promise<NeutralStats> {
    const prompts = $<HTMLTextAreaElement>('neutral').value.split('\n').map((s) => s.trim()).filter(Boolean);
    const key = JSON.stringify([monitor, prompts]);
    let p = neutralCache.get(key);
    if (!p) {
      p = neutralStats(c, prompts, monitor);
      p.catch(() => neutralCache.delete(key));
      neutralCache.set(key, p);
    }
    return p;
  }

  async function run(): Promise<void> {
    controller?.abort();
    const ctl = new AbortController();
    controller = ctl;
    let settings: ViewSettings;
    try {
      settings = readSettings(state.vectors);
    } catch (e) {
      setStatus('error', (e as Error).message);
      return;
    }
    const steering = settings.steer.some((s) => s.coef !== 0);
    const compare = $<HTMLInputElement>('compare').checked && steering;
    const kinds = compare ? [false, true] : [steering];
    const panesEl = $('panes');
    panesEl.replaceChildren();
    $('legend').hidden = true;
    const panes = kinds.map((steered) => makePane(panesEl, settings, steered));
    state.answers = [];
    state.neutral = null;
    state.center = null;
    $<HTMLButtonElement>('stop').disabled = false;
    setStatus('running', compare ? 'Generating unsteered and steered answers…' : 'Generating…');
    const t0 = performance.now();
    const trait = settings.monitor ? traitOf(state.vectors, settings.monitor.vector) : '';
    const neutral = settings.monitor ? neutralFor(settings.monitor) : null;
    try {
      const answers = await Promise.all(
        panes.map((pane) =>
          streamAnswer(
            c,
            requestOf(settings, pane.steered),
            {
              prompt: (p) => {
                pane.promptProjection = p;
                if (p === null) return;
                pane.reading.textContent = `Last prompt token: ${p.toFixed(3)} on ${trait} @ layer ${settings.monitor!.layer} (neutral prompts: computing…)`;
                void neutral?.then((n) => (pane.reading.textContent = readingText(p, n, trait, settings.monitor!.layer))).catch(() => undefined);
              },
              token: (t) => {
                pane.tokens.push(t);
                const span = document.createElement('span');
                span.className = 'token';
                span.textContent = t.text;
                if (t.projection !== null) {
                  span.dataset.projection = String(t.projection);
                  span.title = `${JSON.stringify(t.text)}: projection ${t.projection.toFixed(3)}`;
                }
                pane.answer.append(span);
              },
            },
            ctl.signal,
          ),
        ),
      );
      if (controller !== ctl) return;
      state.answers = answers.map((answer, i) => ({ steered: panes[i].steered, answer, seed: settings.seed }));
      if (neutral) {
        const n = await neutral;
        if (controller !== ctl) return;
        state.neutral = n;
        state.center = n.tokenMean;
        panes.forEach((p) => {
          if (p.promptProjection !== null) p.reading.textContent = readingText(p.promptProjection, n, trait, settings.monitor!.layer);
        });
        await colourAndChart(panes, n.tokenMean, settings, trait);
      }
      const n = answers.reduce((s, a) => s + a.tokens.length, 0);
      setStatus('done', `${ctl.signal.aborted ? 'Stopped' : 'Done'}: ${n} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s.`);
    } catch (e) {
      // A run stopped by a newer one leaves the status to that one.
      if (controller !== ctl) return;
      if (ctl.signal.aborted) setStatus('done', 'Stopped.');
      else setStatus('error', `Error: ${(e as Error).message}`);
    } finally {
      if (controller === ctl) $<HTMLButtonElement>('stop').disabled = true;
    }
  }

  function makePane(parent: HTMLElement, s: ViewSettings, steered: boolean): Pane {
    const root = document.createElement('article');
    root.className = 'pane';
    root.dataset.steered = String(steered);
    const h = document.createElement('h2');
    const active = s.steer.filter((x) => x.coef !== 0);
    h.textContent = steered ? `Steered: ${active.map((x) => `${x.vector} ${x.coef > 0 ? '+' : ''}${x.coef} @ layer ${x.layer} (${x.positions})`).join(', ')}` : 'Unsteered';
    const meta = document.createElement('p');
    meta.className = 'muted';
    meta.textContent = `seed ${s.seed} · ${s.temperature > 0 ? `temperature ${s.temperature}${s.topP < 1 ? `, top-p ${s.topP}` : ''}` : 'greedy'}`;
    const reading = document.createElement('p');
    reading.className = 'reading';
    const answer = document.createElement('div');
    answer.className = 'answer';
    answer.setAttribute('aria-label', `${steered ? 'steered' : 'unsteered'} answer`);
    const chart = document.createElement('div');
    chart.className = 'chart';
    const cmd = document.createElement('pre');
    cmd.className = 'command';
    const r = reproduceCommand(s, steered, state.vectors, c.modelDir);
    cmd.textContent = 'command' in r ? r.command : r.reason;
    cmd.setAttribute('aria-label', 'persona generate command reproducing this answer');
    root.append(h, meta, reading, answer, chart, cmd);
    parent.append(root);
    return { steered, root, reading, answer, chart, tokens: [], promptProjection: null };
  }
}

function traitOf(vectors: readonly VectorInfo[], name: string): string {
  return vectors.find((v) => v.name === name)?.trait ?? name;
}

function readingText(p: number, n: NeutralStats, trait: string, layer: number): string {
  return `Last prompt token: ${p.toFixed(3)} on ${trait} @ layer ${layer} — ${promptReading(trait, zScore(p, n))} (mean ${n.mean.toFixed(3)}, σ ${n.std.toFixed(3)}, ${n.values.length} prompts)`;
}

/** Diverging colours: red toward the trait, blue away, white at the centre (vega's redblue scheme, reversed). */
const redblue = scheme('redblue') as (t: number) => string;
function colour(p: number, center: number, half: number): string {
  const t = Math.max(-1, Math.min(1, (p - center) / half));
  // Kept within the scheme's lighter 80% so that black text stays readable.
  return redblue(0.5 - 0.4 * t);
}

async function colourAndChart(panes: Pane[], center: number, s: ViewSettings, trait: string): Promise<void> {
  const all = panes.flatMap((p) => p.tokens.map((t) => t.projection)).filter((x): x is number => x !== null);
  const half = Math.max(1e-6, ...all.map((x) => Math.abs(x - center)));
  for (const pane of panes) {
    pane.answer.querySelectorAll<HTMLElement>('.token').forEach((span) => {
      const p = Number(span.dataset.projection);
      if (span.dataset.projection !== undefined && Number.isFinite(p)) span.style.backgroundColor = colour(p, center, half);
    });
  }
  const legend = document.getElementById('legend')!;
  const stops = Array.from({ length: 11 }, (_, i) => redblue(0.5 - 0.4 * (i / 5 - 1))).join(', ');
  legend.innerHTML = '';
  const title = document.createElement('div');
  title.textContent = `Token colour: projection on ${trait} @ layer ${s.monitor!.layer}, centred on the mean over unsteered answers to the neutral prompts`;
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.style.background = `linear-gradient(to right, ${stops})`;
  bar.setAttribute('role', 'img');
  bar.setAttribute('aria-label', `colour scale from ${(center - half).toFixed(2)} (blue, away from ${trait}) through ${center.toFixed(2)} (white) to ${(center + half).toFixed(2)} (red, toward ${trait})`);
  const ticks = document.createElement('div');
  ticks.className = 'ticks';
  for (const [v, label] of [[center - half, `away from ${trait}`], [center, 'unsteered mean'], [center + half, `toward ${trait}`]] as const) {
    const t = document.createElement('span');
    t.textContent = `${v.toFixed(2)} ${label}`;
    ticks.append(t);
  }
  legend.append(title, bar, ticks);
  legend.hidden = false;
  const values = all.length ? [Math.min(...all, center), Math.max(...all, center)] : [center - 1, center + 1];
  await Promise.all(
    panes.map((pane) =>
      embed(
        pane.chart,
        {
          $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
          description: `Projection per generated token on ${trait}`,
          width: 'container',
          height: 140,
          layer: [
            {
              data: { values: pane.tokens.map((t, i) => ({ token: i, projection: t.projection, text: t.text })) },
              mark: { type: 'line', point: true, tooltip: true },
              encoding: {
                x: { field: 'token', type: 'quantitative', title: 'generated token', axis: { tickMinStep: 1, format: 'd' } },
                y: { field: 'projection', type: 'quantitative', title: `projection (${trait}, L${s.monitor!.layer})`, scale: { domain: values, zero: false } },
              },
            },
            { data: { values: [{ center }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { y: { field: 'center', type: 'quantitative' } } },
          ],
        },
        { renderer: 'svg', actions: false },
      ),
    ),
  );
}

function buildVectorControls(vectors: VectorInfo[]): void {
  const sliders = document.getElementById('sliders')!;
  const monitor = document.getElementById('monitor-vector') as HTMLSelectElement;
  const monitorLayer = document.getElementById('monitor-layer') as HTMLSelectElement;
  if (vectors.length) sliders.replaceChildren();
  vectors.forEach((v, i) => {
    const row = document.createElement('div');
    row.className = 'slider';
    row.dataset.vector = v.name;
    const id = `v${i}`;
    const label = `${v.name}${v.trait && v.trait !== v.name ? ` (${v.trait})` : ''}`;
    row.innerHTML = `
      <label for="${id}-coef">${escapeHtml(label)}: coefficient <output id="${id}-out" for="${id}-coef">0</output></label>
      <input type="range" id="${id}-coef" class="coef" min="-4" max="4" step="0.25" value="0" aria-valuetext="0 (off)">
      <div class="row">
        <span><label for="${id}-layer">Layer</label> <select id="${id}-layer" class="layer"></select></span>
        <span><label for="${id}-positions">Positions</label> <select id="${id}-positions" class="positions"></select></span>
      </div>`;
    const coef = row.querySelector<HTMLInputElement>('.coef')!;
    const out = row.querySelector('output')!;
    coef.addEventListener('input', () => {
      out.textContent = coef.value;
      coef.setAttribute('aria-valuetext', Number(coef.value) === 0 ? '0 (off)' : coef.value);
    });
    fillLayers(row.querySelector('.layer')!, v, defaultLayer(v));
    const pos = row.querySelector<HTMLSelectElement>('.positions')!;
    for (const p of POSITIONS) pos.add(new Option(p, p, p === 'all', p === 'all'));
    sliders.append(row);
    monitor.add(new Option(label, v.name));
  });
  const syncMonitorLayers = () => {
    const v = vectors.find((x) => x.name === monitor.value);
    monitorLayer.replaceChildren();
    monitorLayer.disabled = !v;
    if (v) fillLayers(monitorLayer, v, defaultLayer(v));
  };
  monitor.addEventListener('change', syncMonitorLayers);
  if (vectors.length) monitor.value = vectors[0].name;
  syncMonitorLayers();
}

function fillLayers(select: HTMLSelectElement, v: VectorInfo, selected: number): void {
  for (const L of v.layers) select.add(new Option(`${L}${L === v.best_layer ? ' (best)' : ''}`, String(L), L === selected, L === selected));
}

function readSettings(vectors: VectorInfo[]): ViewSettings {
  const num = (id: string, what: string, check: (x: number) => boolean): number => {
    const x = Number((document.getElementById(id) as HTMLInputElement).value);
    if (!Number.isFinite(x) || !check(x)) throw new Error(`${what} is not valid`);
    return x;
  };
  const user = (document.getElementById('user') as HTMLTextAreaElement).value;
  if (!user.trim()) throw new Error('Write a user message first.');
  const steer = [...document.querySelectorAll<HTMLElement>('#sliders .slider')].map((row) => ({
    vector: row.dataset.vector!,
    coef: Number(row.querySelector<HTMLInputElement>('.coef')!.value),
    layer: Number(row.querySelector<HTMLSelectElement>('.layer')!.value),
    positions: row.querySelector<HTMLSelectElement>('.positions')!.value as PersonaPositions,
  }));
  const mv = (document.getElementById('monitor-vector') as HTMLSelectElement).value;
  const monitor = mv && vectors.some((v) => v.name === mv) ? { vector: mv, layer: Number((document.getElementById('monitor-layer') as HTMLSelectElement).value) } : null;
  return {
    system: (document.getElementById('system') as HTMLTextAreaElement).value,
    user,
    maxTokens: num('max-tokens', 'Max tokens', (x) => Number.isInteger(x) && x >= 1),
    temperature: num('temperature', 'Temperature', (x) => x >= 0),
    topP: num('top-p', 'Top-p', (x) => x > 0 && x <= 1),
    seed: num('seed', 'Seed', (x) => Number.isInteger(x) && x >= 0),
    steer,
    monitor,
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}
