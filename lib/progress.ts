/**
 * Progress bars with ETA for long work (rollouts, judging, activation passes). Drawn with cli-progress
 * on stderr only when stderr is a TTY and not under jest, so logs and tests stay clean.
 */
import * as cliProgress from 'cli-progress';

export interface Progress {
  /** Set the number done so far (absolute). */
  update(done: number): void;
  /** Add to the total (work discovered later, e.g. a second pass). */
  setTotal(total: number): void;
  stop(): void;
}

const SILENT: Progress = { update: () => undefined, setTotal: () => undefined, stop: () => undefined };

/** Whether bars are drawn: stderr is a terminal, not a test run, and PERSONA_NO_PROGRESS is unset. */
export function progressEnabled(): boolean {
  return !!process.stderr.isTTY && process.env.JEST_WORKER_ID === undefined && !process.env.PERSONA_NO_PROGRESS;
}

/** A bar labelled `label` over `total` steps; a no-op object when bars are disabled or `quiet`. */
export function startProgress(label: string, total: number, opts: { quiet?: boolean; start?: number } = {}): Progress {
  if (opts.quiet || !progressEnabled()) return SILENT;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {duration_formatted}`, stream: process.stderr, hideCursor: true, etaBuffer: 20 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, opts.start ?? 0);
  return {
    update: (done) => bar.update(done),
    setTotal: (t) => bar.setTotal(t),
    stop: () => bar.stop(),
  };
}
