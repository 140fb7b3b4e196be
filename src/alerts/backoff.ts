import type { AttemptResult } from "./types.ts";

/** How a message is retried: exponential backoff with jitter, Retry-After honoured, given up after `giveUpMs`. */
export interface RetryPolicy {
  /** The first retry waits between half of this and this; each next one twice as long… */
  initialDelayMs: number;
  /** …up to this. */
  maxDelayMs: number;
  /** No attempt starts later than this after the first one. */
  giveUpMs: number;
}

export const DEFAULT_RETRY = { initialDelayMs: 1_000, maxDelayMs: 60_000 } as const;
/** A Retry-After longer than this is read as this. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/** The wait before retry number `retry` (1 = the first retry): "equal jitter", in [cap/2, cap]. */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** Retry-After (delay-seconds or an HTTP date) in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // An HTTP date names its day and month ("Sun, 01 Mar 2026 12:00:45 GMT"); Date.parse reads "-5" as a year.
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

export type DeliveryOutcome =
  | { kind: "delivered"; attempts: number; status: number }
  /** The receiver refused it (a 4xx other than 408/429): sending it again would not help. */
  | { kind: "rejected"; attempts: number; last: AttemptResult }
  /** The next retry would start past giveUpMs. */
  | { kind: "gave-up"; attempts: number; last: AttemptResult }
  /** Stopped (shutdown) while waiting to retry: the message is still undelivered. */
  | { kind: "stopped"; attempts: number; last: AttemptResult | undefined };

/**
 * Attempts a delivery until it succeeds, is refused, or the next retry would start after `giveUpMs`.
 * The waits are timers that do not keep the process alive; `stop` ends a wait at once.
 */
export async function deliverWithRetry(
  attempt: () => Promise<AttemptResult>,
  opts: {
    policy: RetryPolicy;
    stop: AbortSignal;
    random?: () => number;
    /** Told of each failed attempt that will be retried, with the wait before the retry. */
    onRetry?: (last: AttemptResult, attempts: number, delayMs: number) => void;
  },
): Promise<DeliveryOutcome> {
  const started = Date.now();
  let last: AttemptResult | undefined;
  for (let attempts = 1; ; attempts++) {
    if (opts.stop.aborted) return { kind: "stopped", attempts: attempts - 1, last };
    last = await attempt();
    if (last.ok) return { kind: "delivered", attempts, status: last.status };
    // Cut or failed while stopping: no retry to announce; the caller decides what becomes of the message.
    if (opts.stop.aborted && last.retryable) return { kind: "stopped", attempts, last };
    if (!last.retryable) return { kind: "rejected", attempts, last };
    const delay = Math.max(backoffDelay(attempts, opts.policy, opts.random), last.retryAfterMs ?? 0);
    if (Date.now() + delay - started > opts.policy.giveUpMs) return { kind: "gave-up", attempts, last };
    opts.onRetry?.(last, attempts, delay);
    await sleep(delay, opts.stop);
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts; the timer never keeps the process alive. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref?.();
    signal.addEventListener("abort", done, { once: true });
  });
}
