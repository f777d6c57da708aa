import { Presets, SingleBar } from 'cli-progress';

/** Options of {@link ImportProgress}. */
export interface ImportProgressOptions {
  /** Vectors in the file, when its format says (`.npy`, `.fvecs`); else the bar grows as it reads. */
  total: number | undefined;
  /** Live updates: a bar on a terminal, else (when asked) a line a second. */
  live: boolean;
  /** Where the lines go (default stderr). */
  stream?: NodeJS.WriteStream;
}

const seconds = (ms: number): string => (ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000)));

/**
 * The progress of an import on stderr: vectors done of the total, the rate (vectors stored per
 * second) and the time left; live only where asked, and always one summary line at the end, so
 * logs keep the figures and stdout keeps only the result.
 */
export class ImportProgress {
  private readonly bar: SingleBar | undefined;
  private readonly stream: NodeJS.WriteStream;
  private readonly t0 = performance.now();
  private done = 0;
  private stored = 0;
  private skipped = 0;

  constructor(private readonly opts: ImportProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    if (opts.live) {
      this.bar = new SingleBar(
        {
          format: 'import |{bar}| {value}/{total} | {rate} vectors/s | ETA {eta_formatted} | skipped {skipped}',
          stream: this.stream,
          etaBuffer: 20,
          // Not a terminal (a log, CI) but asked for: a line a second, and one at the end.
          noTTYOutput: true,
          notTTYSchedule: 1000,
        },
        Presets.shades_classic,
      );
      this.bar.start(opts.total ?? 0, 0, { rate: 0, skipped: 0 });
    }
  }

  /** Vectors stored per second so far. */
  get rate(): number {
    const s = (performance.now() - this.t0) / 1000;
    return s > 0 ? Math.round(this.stored / s) : 0;
  }

  /** A batch is through: `stored` written, `skipped` already there. */
  add(stored: number, skipped: number): void {
    this.done += stored + skipped;
    this.stored += stored;
    this.skipped += skipped;
    if (!this.bar) return;
    if (this.opts.total === undefined) this.bar.setTotal(this.done);
    this.bar.update(this.done, { rate: this.rate, skipped: this.skipped });
  }

  /** Stops the live updates and writes the summary line; `where` says how the vectors went. */
  finish(where: string): void {
    this.bar?.stop();
    const ms = performance.now() - this.t0;
    this.stream.write(
      `import: ${this.done} vectors in ${seconds(ms)} s, ${this.rate} vectors/s ` +
        `(stored ${this.stored}, skipped ${this.skipped}; ${where})\n`,
    );
  }

  /** Stops the live updates (on failure), leaving the last line as it was. */
  stop(): void {
    this.bar?.stop();
  }
}
