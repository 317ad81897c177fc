/**
 * Progress in logs (issue 12): outside a terminal, a line with done/total, elapsed and ETA at least every
 * interval — also while one long step runs — and a last line at the end; the Slurm script no longer turns it off.
 */
import { PassThrough } from 'stream';
import { formatDuration, progressLine, progressMode, startProgress } from '../lib/progress';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function capture(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

test('log mode: a line every interval even without updates, done/total and ETA from the rate, a final line', async () => {
  const { stream, lines } = capture();
  const p = startProgress('extract', 40, { mode: 'log', stream, intervalMs: 60, start: 10 });
  p.update(20, 'loss 1.5000');
  await sleep(200); // no update meanwhile: the timer still reports
  const during = lines();
  expect(during.length).toBeGreaterThanOrEqual(2);
  for (const l of during) expect(l).toMatch(/^extract: 20\/40 \(50%\), \d+s elapsed, ETA \d+s, loss 1\.5000$/);
  p.update(40);
  p.stop();
  p.stop();
  const all = lines();
  expect(all).toHaveLength(during.length + 1);
  expect(all[all.length - 1]).toMatch(/^extract: 40\/40 \(100%\), \d+s elapsed, done, loss 1\.5000$/);
  await sleep(150);
  expect(lines()).toHaveLength(all.length); // stopped: no more lines
});

test('lines and durations', () => {
  // 10 of 40 done in 60 s since the start at 0: 30 left at 1/6 per s = 180 s.
  expect(progressLine('run', 10, 40, 0, 60_000)).toBe('run: 10/40 (25%), 1m00s elapsed, ETA 3m00s');
  // Work resumed from 8 is not part of the rate: 2 done in 60 s, 30 left → 15 min.
  expect(progressLine('run', 10, 40, 8, 60_000)).toBe('run: 10/40 (25%), 1m00s elapsed, ETA 15m00s');
  expect(progressLine('run', 8, 40, 8, 5_000)).toBe('run: 8/40 (20%), 5s elapsed, ETA ?');
  expect(formatDuration(3700)).toBe('1h01m');
});

test('mode: a bar on a terminal, lines elsewhere, off in tests', () => {
  const saved = process.env.JEST_WORKER_ID;
  try {
    expect(progressMode({ isTTY: false })).toBe('off'); // under jest
    delete process.env.JEST_WORKER_ID;
    expect(progressMode({ isTTY: true })).toBe('bar');
    expect(progressMode({ isTTY: false })).toBe('log');
    expect(progressMode({})).toBe('log');
  } finally {
    process.env.JEST_WORKER_ID = saved;
  }
});
