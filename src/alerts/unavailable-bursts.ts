/**
 * SIGNATURE_UNAVAILABLE bursts per (project, upstream): a burst starts when `threshold` such decisions
 * fall within `windowMs`, and lasts while they keep coming less than `windowMs` apart. The decision that
 * starts a burst reports all `threshold` of them; each next one of the burst reports itself (the webhook
 * queues merge them into the burst's alert). Isolated failures report nothing.
 */
export class UnavailableBursts {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Recent failure times (oldest first) of each (project, upstream), or the time of the last one of a burst. */
  readonly #state = new Map<string, { times: number[]; burstLastAt: number | undefined }>();

  constructor(opts: { threshold: number; windowMs: number; maxKeys?: number }) {
    this.#threshold = opts.threshold;
    this.#windowMs = opts.windowMs;
    this.#maxKeys = opts.maxKeys ?? 1024;
  }

  /** One SIGNATURE_UNAVAILABLE decision at `now`: what to report (how many, since when), if anything. */
  observe(project: string, upstream: string, now: number): { count: number; firstSeen: number } | undefined {
    const key = `${project}\u0000${upstream}`;
    let s = this.#state.get(key);
    if (s)
      this.#state.delete(key); // re-inserted below: the map's order is least recently seen first
    else s = { times: [], burstLastAt: undefined };
    this.#state.set(key, s);
    if (this.#state.size > this.#maxKeys) {
      const oldest = this.#state.keys().next().value;
      if (oldest !== undefined) this.#state.delete(oldest);
    }
    if (s.burstLastAt !== undefined && now - s.burstLastAt <= this.#windowMs) {
      s.burstLastAt = now;
      return { count: 1, firstSeen: now };
    }
    s.burstLastAt = undefined;
    s.times = s.times.filter((t) => now - t <= this.#windowMs);
    s.times.push(now);
    if (s.times.length < this.#threshold) return undefined;
    const firstSeen = s.times[0] ?? now;
    const count = s.times.length;
    s.times = [];
    s.burstLastAt = now;
    return { count, firstSeen };
  }

  /** (project, upstream) pairs tracked now (bounded by maxKeys). */
  get size(): number {
    return this.#state.size;
  }
}
