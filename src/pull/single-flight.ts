/** Concurrent calls with the same key share one execution; the key is free again once it settles. */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();
  run(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.#inflight.get(key);
    if (!p) {
      p = fn().finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  get size(): number {
    return this.#inflight.size;
  }
}
