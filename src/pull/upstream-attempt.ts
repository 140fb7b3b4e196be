import { UpstreamError } from "../upstream/index.ts";

/**
 * The outcome of one upstream read made for a decision (signature lookups, artifact proofs):
 * - ok: the value;
 * - missing: 404 (and answers that cannot hold a valid signature: over the size cap);
 * - unavailable: could not look (401/403/429/5xx, timeout, unreachable, bytes that do not match
 *   their digest): never read as "unsigned";
 * - skipped: not fetched because the lookup's budget (distinct blobs, bytes) was spent.
 */
export type Attempt<T> =
  | { ok: true; value: T }
  | { ok: false; outcome: "missing" }
  | { ok: false; outcome: "unavailable"; detail: string }
  | { ok: false; outcome: "skipped"; detail: string };

/** Runs one upstream read and classifies its failure. A client or deadline abort propagates. */
export async function attempt<T>(counter: { requests: number }, fn: () => Promise<T>): Promise<Attempt<T>> {
  counter.requests++;
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    switch (err.code) {
      case "ABORTED":
        throw err;
      case "STATUS":
        if (err.status === 404 || err.status === 400 || err.status === 405 || err.status === 501) {
          // 400/405/501 from a referrers endpoint: the registry has no referrers API.
          return { ok: false, outcome: "missing" };
        }
        return { ok: false, outcome: "unavailable", detail: `upstream answered ${err.status}` };
      case "TOO_LARGE":
        // Over the size cap: nothing that large can be a signature pullgate would judge.
        return { ok: false, outcome: "missing" };
      case "DIGEST_MISMATCH":
        // A broken answer: "could not look", never cached as a denial.
        return { ok: false, outcome: "unavailable", detail: "bytes do not match their digest" };
      case "TIMEOUT":
      case "UNREACHABLE":
      case "BAD_RESPONSE":
      case "AUTH_FAILED":
        return { ok: false, outcome: "unavailable", detail: err.code.toLowerCase() };
      default: {
        const never: never = err.code;
        return never;
      }
    }
  }
}
