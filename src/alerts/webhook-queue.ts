import type { Logger } from "../telemetry/index.ts";
import { DEFAULT_RETRY, type DeliveryOutcome, deliverWithRetry } from "./backoff.ts";
import { type AlertEntry, type AttemptResult, alertKey } from "./types.ts";

export interface WebhookQueueOptions {
  /** The webhook's name: the only way it is named in logs (its URL may carry a secret). */
  name: string;
  /** After the first alert of a batch arrives, the batch waits this long for more. */
  batchMs: number;
  /** At least this long between the starts of two messages. */
  minIntervalMs: number;
  /** Alerts per message. */
  maxBatchSize: number;
  /**
   * Alerts of distinct images waiting at most; beyond, new images fold into their project's alert, and past
   * twice this the oldest is dropped (and counted).
   */
  queueSize: number;
  giveUpMs: number;
  /** Retry backoff (default: 1 s doubling up to 60 s). */
  retry?: { initialDelayMs: number; maxDelayMs: number };
  /** One delivery attempt of one message; `signal` bounds the final flush at shutdown. */
  send(entries: readonly AlertEntry[], dropped: number, signal?: AbortSignal): Promise<AttemptResult>;
  logger: Logger;
  random?: () => number;
}

export interface WebhookQueueStats {
  /** Alerts waiting now (distinct keys). */
  pending: number;
  /** Decisions and bursts handed to this webhook. */
  received: number;
  /** Alerts dropped because the queue was full. */
  dropped: number;
  /** Messages delivered, and the alerts they carried. */
  messagesSent: number;
  alertsSent: number;
  /** Messages given up (refused, or undelivered after giveUpMs, or at shutdown), and their alerts. */
  messagesFailed: number;
  alertsFailed: number;
  /** Delivery attempts that failed and were retried. */
  retries: number;
}

interface Held {
  entry: AlertEntry;
  /** When the alert was first queued (its batch window starts then). */
  queuedAt: number;
}

/**
 * One webhook's queue: alerts with the same key (event, project, upstream, repository, digest, reason)
 * are merged while they wait (count, first and last time), so a thousand pulls of one denied image are
 * one alert. One message at a time, at most `maxBatchSize` alerts each, no sooner than `batchMs` after its
 * oldest alert was queued and `minIntervalMs` after the previous message. `add` never waits and never
 * throws: everything else happens on timers that do not keep the process alive.
 */
export class WebhookQueue {
  readonly #opts: WebhookQueueOptions;
  #pending = new Map<string, Held>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<void> | undefined;
  #lastSendAt = Number.NEGATIVE_INFINITY;
  /** Dropped since the last message: told to the receiver in the next one. */
  #droppedUnreported = 0;
  readonly #stopping = new AbortController();
  /** Aborted when the shutdown flush's time is up: cuts the attempt under way, so stop() is bounded. */
  readonly #cutSends = new AbortController();
  readonly #stats: Omit<WebhookQueueStats, "pending"> = {
    received: 0,
    dropped: 0,
    messagesSent: 0,
    alertsSent: 0,
    messagesFailed: 0,
    alertsFailed: 0,
    retries: 0,
  };

  constructor(opts: WebhookQueueOptions) {
    this.#opts = opts;
  }

  get name(): string {
    return this.#opts.name;
  }

  stats(): WebhookQueueStats {
    return { pending: this.#pending.size, ...this.#stats };
  }

  add(entry: AlertEntry): void {
    this.#stats.received++;
    if (this.#stopping.signal.aborted) {
      this.#drop(1);
      return;
    }
    this.#hold({ ...entry }, Date.now());
    this.#schedule();
  }

  /**
   * Stops the timers and, within `flushMs`, waits for the message being sent and sends what is still
   * queued, once each (no retries). What is left after that is logged as lost.
   */
  async stop(flushMs: number): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = new AbortController();
    deadline.signal.addEventListener("abort", () => this.#cutSends.abort(), { once: true });
    const timer = setTimeout(() => deadline.abort(), Math.max(0, flushMs));
    timer.unref?.();
    const timedOut = new Promise<AttemptResult>((resolve) => {
      const done = () => resolve({ ok: false, retryable: false, error: "shutdown flush timeout" });
      if (deadline.signal.aborted) done();
      else deadline.signal.addEventListener("abort", done, { once: true });
    });
    try {
      if (this.#inflight) await Promise.race([this.#inflight, timedOut]);
      while (this.#pending.size > 0 && !deadline.signal.aborted) {
        const { entries, dropped } = this.#take();
        const result = await Promise.race([
          this.#opts
            .send(entries, dropped, deadline.signal)
            .catch((): AttemptResult => ({ ok: false, retryable: false, error: "send failed" })),
          timedOut,
        ]);
        if (result.ok) this.#sent(entries, { kind: "delivered", attempts: 1, status: result.status });
        else this.#failed(entries, { kind: "gave-up", attempts: 1, last: result }, "at shutdown");
      }
    } finally {
      clearTimeout(timer);
      deadline.abort();
    }
    // The attempt under way was cut at the deadline: its alerts come back to the queue (a stopped delivery),
    // and are counted with the rest below, never lost without a word.
    if (this.#inflight) await this.#inflight;
    if (this.#pending.size > 0) {
      const left = [...this.#pending.values()].map((h) => h.entry);
      this.#pending.clear();
      this.#failed(left, { kind: "stopped", attempts: 0, last: undefined }, "at shutdown");
    }
  }

  #hold(entry: AlertEntry, queuedAt: number): void {
    // A full queue folds an alert about a new image into its project's alert (one per event, project,
    // upstream and reason, the image as `example`), so a flood of distinct images in a project says how many
    // and loses nothing. Those alerts are few (the projects are the configuration's), so only past twice
    // `queueSize` is the oldest dropped.
    let alert = entry;
    let key = alertKey(entry);
    if (!this.#pending.has(key) && this.#pending.size >= this.#opts.queueSize) {
      alert = folded(entry);
      key = alertKey(alert);
    }
    const held = this.#pending.get(key);
    if (held) {
      merge(held.entry, alert);
      held.queuedAt = Math.min(held.queuedAt, queuedAt);
      return;
    }
    if (this.#pending.size >= 2 * this.#opts.queueSize) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
      this.#drop(1);
    }
    this.#pending.set(key, { entry: alert, queuedAt });
  }

  #drop(n: number): void {
    this.#stats.dropped += n;
    this.#droppedUnreported += n;
  }

  #schedule(): void {
    if (this.#stopping.signal.aborted || this.#inflight || this.#timer || this.#pending.size === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const h of this.#pending.values()) oldest = Math.min(oldest, h.queuedAt);
    const due = Math.max(oldest + this.#opts.batchMs, this.#lastSendAt + this.#opts.minIntervalMs);
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, due - Date.now()));
    this.#timer.unref?.();
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#stopping.signal.aborted || this.#pending.size === 0) return;
    this.#inflight = this.#deliverNext().finally(() => {
      this.#inflight = undefined;
      this.#schedule();
    });
  }

  /** The oldest `maxBatchSize` alerts, taken off the queue, and the drops not yet reported. */
  #take(): { entries: AlertEntry[]; dropped: number } {
    const entries: AlertEntry[] = [];
    for (const [key, held] of this.#pending) {
      if (entries.length >= this.#opts.maxBatchSize) break;
      entries.push(held.entry);
      this.#pending.delete(key);
    }
    const dropped = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    return { entries, dropped };
  }

  async #deliverNext(): Promise<void> {
    const { entries, dropped } = this.#take();
    this.#lastSendAt = Date.now();
    let outcome: DeliveryOutcome;
    try {
      outcome = await deliverWithRetry(() => this.#opts.send(entries, dropped, this.#cutSends.signal), {
        policy: { ...(this.#opts.retry ?? DEFAULT_RETRY), giveUpMs: this.#opts.giveUpMs },
        stop: this.#stopping.signal,
        ...(this.#opts.random ? { random: this.#opts.random } : {}),
        onRetry: (last, attempts, delayMs) => {
          this.#stats.retries++;
          this.#opts.logger.log("warn", "alert delivery failed", {
            webhook: this.#opts.name,
            ...describe(last),
            attempts,
            retryInMs: delayMs,
          });
        },
      });
    } catch (err) {
      // send() resolves with its failures; anything else is a bug, reported without the message text.
      outcome = {
        kind: "rejected",
        attempts: 1,
        last: { ok: false, retryable: false, error: (err as Error).name },
      };
    }
    if (outcome.kind === "delivered") this.#sent(entries, outcome);
    else if (outcome.kind === "stopped") this.#requeue(entries, dropped);
    else this.#failed(entries, outcome, outcome.kind === "rejected" ? "refused" : "gave up");
  }

  /** Stopped while waiting to retry: the message goes back to the front of the queue for the final flush. */
  #requeue(entries: readonly AlertEntry[], dropped: number): void {
    const rest = this.#pending;
    this.#pending = new Map();
    const now = Date.now();
    for (const e of entries) this.#hold(e, now);
    for (const held of rest.values()) this.#hold(held.entry, held.queuedAt);
    this.#droppedUnreported += dropped;
  }

  #sent(entries: readonly AlertEntry[], outcome: DeliveryOutcome & { kind: "delivered" }): void {
    this.#stats.messagesSent++;
    this.#stats.alertsSent += entries.length;
    this.#opts.logger.log("debug", "alert sent", {
      webhook: this.#opts.name,
      alerts: entries.length,
      decisions: entries.reduce((n, e) => n + e.count, 0),
      attempts: outcome.attempts,
      status: outcome.status,
    });
  }

  #failed(entries: readonly AlertEntry[], outcome: DeliveryOutcome, why: string): void {
    this.#stats.messagesFailed++;
    this.#stats.alertsFailed += entries.length;
    this.#opts.logger.log("warn", "alert delivery given up", {
      webhook: this.#opts.name,
      why,
      alerts: entries.length,
      attempts: outcome.attempts,
      ...(outcome.kind !== "delivered" && outcome.last ? describe(outcome.last) : {}),
    });
  }
}

/** `entry` as its project's alert: no repository or digest, the image as `example`. */
export function folded(entry: AlertEntry): AlertEntry {
  if (entry.repository === undefined && entry.digest === undefined) return entry;
  const { repository, digest, ...rest } = entry;
  return { ...rest, example: entry.example ?? `${repository ?? "?"}@${digest ?? "?"}` };
}

/** Adds `more` into `into` (same key). */
export function merge(into: AlertEntry, more: AlertEntry): void {
  into.count += more.count;
  into.firstSeen = Math.min(into.firstSeen, more.firstSeen);
  into.lastSeen = Math.max(into.lastSeen, more.lastSeen);
  into.detail ??= more.detail;
  into.example ??= more.example;
}

function describe(result: AttemptResult): Record<string, unknown> {
  if (result.ok) return { status: result.status };
  return {
    ...(result.status !== undefined ? { status: result.status } : {}),
    ...(result.error !== undefined ? { error: result.error } : {}),
  };
}
