/** Thrown by a ConcurrencyLimit whose slots and queue are all taken. */
export class QueueFullError extends Error {
  readonly code = "QUEUE_FULL";
  constructor() {
    super("too many waiting");
    this.name = "QueueFullError";
  }
}

export interface ConcurrencyLimit {
  /** Runs `fn` when a slot is free; rejects with QueueFullError at once when the queue is full too. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly queued: number;
}

/** At most `maxConcurrent` tasks at a time and at most `maxQueued` waiting: beyond that, refuse. */
export function createConcurrencyLimit(opts: { maxConcurrent: number; maxQueued: number }): ConcurrencyLimit {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return {
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (active < opts.maxConcurrent) active++;
      else if (waiting.length < opts.maxQueued) await new Promise<void>((resolve) => waiting.push(resolve));
      else throw new QueueFullError();
      // The slot is ours here (handed over by release() without decrementing when someone waited).
      try {
        return await fn();
      } finally {
        release();
      }
    },
  };
}
