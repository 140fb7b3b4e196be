import { type Digest, digestMatches } from "../oci/index.ts";
import type { RegistryClient, RequestContext } from "../upstream/index.ts";
import { type Attempt, attempt } from "./upstream-attempt.ts";

export interface BlobBudgetLimits {
  /** Distinct blobs one lookup may fetch. */
  maxBlobs: number;
  /** Bytes one lookup may hold, summed over its distinct blobs. */
  maxTotalBytes: number;
}

/**
 * The small blobs one decision reads (signature payloads, bundles, an artifact's layers), bounded:
 * each distinct blob is fetched once however many descriptors point at it, at most `maxBlobs` of
 * them, and at most `maxTotalBytes` in all. A `.sig` manifest listing one 1 MiB blob a thousand times
 * costs one fetch and one buffer. Past the budget a read is "skipped", which never counts as a
 * signature and never as "could not look".
 */
export class BlobBudget {
  readonly #client: RegistryClient;
  readonly #limits: BlobBudgetLimits;
  readonly #ctx: RequestContext;
  readonly #counter: { requests: number };
  readonly #fetched = new Map<string, Promise<Attempt<Uint8Array>>>();
  #bytes = 0;

  constructor(
    client: RegistryClient,
    limits: BlobBudgetLimits,
    ctx: RequestContext,
    counter: { requests: number },
  ) {
    this.#client = client;
    this.#limits = limits;
    this.#ctx = ctx;
    this.#counter = counter;
  }

  /** The blob's bytes, checked against its digest and `maxBytes` (a wrong or oversized blob is missing). */
  fetch(repository: string, digest: Digest, maxBytes: number): Promise<Attempt<Uint8Array>> {
    const key = `${repository}@${digest}`;
    let pending = this.#fetched.get(key);
    if (!pending) {
      pending = this.#fetchOnce(repository, digest, maxBytes);
      this.#fetched.set(key, pending);
    }
    return pending;
  }

  get bytes(): number {
    return this.#bytes;
  }

  async #fetchOnce(repository: string, digest: Digest, maxBytes: number): Promise<Attempt<Uint8Array>> {
    if (this.#fetched.size >= this.#limits.maxBlobs) {
      return {
        ok: false,
        outcome: "skipped",
        detail: `over the cap of ${this.#limits.maxBlobs} distinct blobs`,
      };
    }
    const room = this.#limits.maxTotalBytes - this.#bytes;
    if (room <= 0) {
      return { ok: false, outcome: "skipped", detail: `over the cap of ${this.#limits.maxTotalBytes} bytes` };
    }
    const r = await attempt(this.#counter, () =>
      this.#client.getBlobBytes(repository, digest, { ...this.#ctx, maxBytes: Math.min(maxBytes, room) }),
    );
    if (!r.ok) return r;
    // A blob that does not hash to its digest is a broken answer, not an absent signature.
    if (!digestMatches(r.value, digest)) {
      return { ok: false, outcome: "unavailable", detail: "bytes do not match their digest" };
    }
    this.#bytes += r.value.length;
    if (this.#bytes > this.#limits.maxTotalBytes) {
      return { ok: false, outcome: "skipped", detail: `over the cap of ${this.#limits.maxTotalBytes} bytes` };
    }
    return r;
  }
}
