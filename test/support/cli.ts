/** The `persona` program run in-process (cli/main.ts) with its output captured: what tests of commands use. */
import { main } from '../../cli/main';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `persona ARGS --backend BACKEND` (no --backend when null); returns the exit code, what it wrote to stdout and
 * stderr, and its time.
 */
export async function runCli(args: string[], backend: string | null = 'cpu'): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  const t0 = Date.now();
  try {
    const code = await main(backend === null ? args : [...args, '--backend', backend]);
    return { code, stdout: out.join(''), stderr: err.join(''), ms: Date.now() - t0 };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}
