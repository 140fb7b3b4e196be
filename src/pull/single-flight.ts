/** Concurrent calls with the same key share one execution; the key is free again once it settles. */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();
  /** `onJoin` is called for every call that joins an execution already under way (metrics). */
  readonly #onJoin: () => void;
  constructor(onJoin: () => void = () => {}) {
    this.#onJoin = onJoin;
  }
  run(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.#inflight.get(key);
    if (!p) {
      p = fn().finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    } else this.#onJoin();
    return p;
  }

  get size(): number {
    return this.#inflight.size;
  }
}
