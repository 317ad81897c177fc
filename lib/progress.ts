/**
 * Progress with ETA for long work (rollouts, judging, activation passes, sweep cells, training steps).
 * On a terminal: a cli-progress bar on stderr. Elsewhere (a log file, Slurm, a pipe): one plain line
 * at least every PERSONA_PROGRESS_INTERVAL seconds (default 30) — a timer, so a line comes even while
 * one long step runs — with done/total, elapsed and ETA, and a last line at the end. Off under jest and
 * with PERSONA_NO_PROGRESS (or `quiet`).
 */
import * as cliProgress from 'cli-progress';

export interface Progress {
  /** Set the number done so far (absolute); `info` (e.g. 'loss 1.23') is shown beside it. */
  update(done: number, info?: string): void;
  /** Add to the total (work discovered later, e.g. a second pass). */
  setTotal(total: number): void;
  stop(): void;
}

export type ProgressMode = 'bar' | 'log' | 'off';

const SILENT: Progress = { update: () => undefined, setTotal: () => undefined, stop: () => undefined };

/** bar on a terminal, log lines otherwise; off in tests and with PERSONA_NO_PROGRESS. */
export function progressMode(stream: { isTTY?: boolean } = process.stderr): ProgressMode {
  if (process.env.PERSONA_NO_PROGRESS || process.env.JEST_WORKER_ID !== undefined) return 'off';
  return stream.isTTY ? 'bar' : 'log';
}

/** Whether progress is shown at all (a bar or log lines). */
export function progressEnabled(): boolean {
  return progressMode() !== 'off';
}

/** Seconds between log lines: PERSONA_PROGRESS_INTERVAL, default 30. */
export function progressIntervalMs(): number {
  const s = Number(process.env.PERSONA_PROGRESS_INTERVAL);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 30_000;
}

/** 75 → '1m15s', 3700 → '1h01m'. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One log line: 'label: 12/40 (30%), 2m00s elapsed, ETA 4m40s[, info]'. ETA from the rate since the start (work done before it excluded). */
export function progressLine(label: string, done: number, total: number, start: number, elapsedMs: number, info?: string): string {
  const pct = total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : '';
  const rate = (done - start) / (elapsedMs / 1000);
  const eta = done >= total ? 'done' : done > start && rate > 0 ? `ETA ${formatDuration((total - done) / rate)}` : 'ETA ?';
  return `${label}: ${done}/${total}${pct}, ${formatDuration(elapsedMs / 1000)} elapsed, ${eta}${info ? `, ${info}` : ''}`;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** Done already when starting (resumed work; not counted in the rate). */
  start?: number;
  /** Default progressMode(). */
  mode?: ProgressMode;
  /** Where lines go; default stderr. */
  stream?: NodeJS.WritableStream;
  /** Log mode: ms between lines; default progressIntervalMs(). */
  intervalMs?: number;
}

/** Progress labelled `label` over `total` steps; a no-op object when off or `quiet`. */
export function startProgress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const mode = opts.quiet ? 'off' : opts.mode ?? progressMode();
  if (mode === 'off') return SILENT;
  const stream = opts.stream ?? process.stderr;
  const start = opts.start ?? 0;
  if (mode === 'bar') {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {duration_formatted}{info}`, stream: stream as NodeJS.WriteStream, hideCursor: true, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, start, { info: '' });
    return {
      update: (done, info) => bar.update(done, { info: info ? ` | ${info}` : '' }),
      setTotal: (t) => bar.setTotal(t),
      stop: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  let done = start;
  let info: string | undefined;
  let stopped = false;
  const write = () => stream.write(`${progressLine(label, done, total, start, Date.now() - t0, info)}\n`);
  // A timer rather than "on update": a line comes every interval even while one long step runs; unref'd so it never keeps the process alive.
  const timer = setInterval(write, opts.intervalMs ?? progressIntervalMs());
  timer.unref?.();
  return {
    update: (d, i) => {
      done = d;
      if (i !== undefined) info = i;
    },
    setTotal: (t) => {
      total = t;
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      write();
    },
  };
}
