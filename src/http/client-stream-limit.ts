import { OciError } from "../oci/index.ts";

/**
 * Blob downloads in flight per client address. One client opening many downloads and never reading
 * them must not hold every upstream connection: past `perClient` it gets 429 TOOMANYREQUESTS. The
 * map holds only addresses with downloads in flight.
 */
export class ClientStreamLimit {
  readonly #perClient: number;
  readonly #inflight = new Map<string, number>();

  constructor(perClient: number) {
    this.#perClient = perClient;
  }

  /** Takes a slot for `client` or throws 429; the returned function gives it back (once). */
  acquire(client: string): () => void {
    const n = this.#inflight.get(client) ?? 0;
    if (n >= this.#perClient) {
      throw new OciError(
        "TOOMANYREQUESTS",
        `too many blob downloads in flight from this client (limit ${this.#perClient}); finish some first`,
        { headers: { "retry-after": "1" } },
      );
    }
    this.#inflight.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inflight.get(client) ?? 1) - 1;
      if (left <= 0) this.#inflight.delete(client);
      else this.#inflight.set(client, left);
    };
  }

  /** Downloads in flight for `client` (tests, metrics). */
  inflight(client: string): number {
    return this.#inflight.get(client) ?? 0;
  }
}
