/** Thrown (and used as the abort reason) when a shared decision outlives its deadline. */
export class DeadlineExceeded extends Error {
  readonly code = "DEADLINE_EXCEEDED";
  constructor(ms: number) {
    super(`deadline of ${ms} ms exceeded`);
  }
}

/**
 * The total deadline of one shared piece of work (a signature lookup, an artifact proof): its signal
 * aborts every upstream request made for it, and race() stops anyone waiting on it, however slowly
 * an upstream drips bytes. clear() ends it early once the work is done, releasing what is left.
 */
export class Deadline {
  readonly ms: number;
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.ms = ms;
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#controller.abort(new DeadlineExceeded(ms)), ms);
    this.#timer.unref();
  }

  race<T>(work: Promise<T>): Promise<T> {
    if (this.signal.aborted) {
      work.catch(() => {});
      return Promise.reject(new DeadlineExceeded(this.ms));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        work.catch(() => {});
        reject(new DeadlineExceeded(this.ms));
      };
      this.signal.addEventListener("abort", onAbort, { once: true });
      work.then(
        (v) => {
          this.signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        (err: unknown) => {
          this.signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  /** The work is over: stop the timer and abort whatever is still running for it. */
  clear(): void {
    clearTimeout(this.#timer);
    if (!this.signal.aborted) this.#controller.abort(new Error("decision made"));
  }
}
