import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import type { CachedVerdict, CacheTier, VerdictCache } from "./types.ts";

/**
 * The one contract every VerdictCache implementation meets: memory here (verdict-cache.contract.test.ts),
 * Redis and memory in front of Redis in test/redis-verdict-cache.test.ts (they need a redis-server).
 */
export type VerdictCacheImplementation = { name: string; tierAfterSet: CacheTier; create(): VerdictCache };

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const FP_A = "fp-a";
const FP_B = "fp-b";

const allowBySignature: CachedVerdict = {
  outcome: "allow",
  via: "signature",
  key: "release-key",
  keyFingerprint: "SHA256:abc+/=",
  decidedAt: 1_760_000_000_123,
};
const allowByIndex: CachedVerdict = {
  outcome: "allow",
  via: "index",
  indexDigest: `sha256:${"f".repeat(64)}`,
  decidedAt: 1_760_000_000_456,
};
const deny: CachedVerdict = { outcome: "deny", reason: "UNTRUSTED_SIGNATURE", decidedAt: 1_760_000_000_789 };

export function verdictCacheContract(impl: VerdictCacheImplementation): void {
  describe(`VerdictCache contract: ${impl.name}`, () => {
    let cache: VerdictCache;
    afterEach(async () => {
      await cache?.close();
    });

    test("a miss is undefined; a stored verdict comes back from the implementation's tier", async () => {
      cache = impl.create();
      expect(await cache.get(FP_A, D1)).toBeUndefined();
      await cache.set(FP_A, D1, allowBySignature, 60);
      const hit = await cache.get(FP_A, D1);
      expect(hit).toMatchObject({ verdict: allowBySignature, tier: impl.tierAfterSet });
      // The remaining lifetime: what a tier in front of this one may keep it for.
      expect(hit?.ttlMs).toBeGreaterThan(0);
      expect(hit?.ttlMs).toBeLessThanOrEqual(60_000);
    });

    test("every verdict shape survives the round trip exactly (JSON-safe), and callers cannot change it", async () => {
      cache = impl.create();
      const minimal: CachedVerdict = { outcome: "allow", via: "signature-artifact", decidedAt: 0 };
      const verdicts = [allowBySignature, allowByIndex, deny, minimal];
      for (const [i, verdict] of verdicts.entries()) await cache.set(FP_A, `sha256:${i}`, verdict, 60);
      for (const [i, verdict] of verdicts.entries()) {
        const hit = await cache.get(FP_A, `sha256:${i}`);
        expect(hit?.verdict).toStrictEqual(verdict);
        expect(JSON.parse(JSON.stringify(hit?.verdict))).toStrictEqual(verdict);
      }
      const hit = await cache.get(FP_A, "sha256:0");
      if (hit) hit.verdict.outcome = "deny";
      expect((await cache.get(FP_A, "sha256:0"))?.verdict.outcome).toBe("allow");
    });

    test("set replaces the verdict of the same (fingerprint, digest)", async () => {
      cache = impl.create();
      await cache.set(FP_A, D1, allowBySignature, 60);
      await cache.set(FP_A, D1, deny, 60);
      expect((await cache.get(FP_A, D1))?.verdict).toEqual(deny);
    });

    test("verdicts are isolated by fingerprint and by digest", async () => {
      cache = impl.create();
      await cache.set(FP_A, D1, allowBySignature, 60);
      await cache.set(FP_B, D2, deny, 60);
      expect(await cache.get(FP_B, D1)).toBeUndefined();
      expect(await cache.get(FP_A, D2)).toBeUndefined();
      expect((await cache.get(FP_A, D1))?.verdict).toEqual(allowBySignature);
      expect((await cache.get(FP_B, D2))?.verdict).toEqual(deny);
    });

    test("a verdict expires after its ttl; others keep their own ttl", async () => {
      cache = impl.create();
      await cache.set(FP_A, D1, allowBySignature, 0.15);
      await cache.set(FP_B, D1, deny, 60);
      expect((await cache.get(FP_A, D1))?.verdict).toEqual(allowBySignature);
      await sleep(250);
      expect(await cache.get(FP_A, D1)).toBeUndefined();
      expect((await cache.get(FP_B, D1))?.verdict).toEqual(deny);
      // Expired verdicts are not counted as dropped.
      expect(await cache.deleteDigest(D1)).toBe(1);
    });

    test("deleteDigest drops the digest under every fingerprint and nothing else", async () => {
      cache = impl.create();
      await cache.set(FP_A, D1, allowBySignature, 60);
      await cache.set(FP_B, D1, deny, 60);
      await cache.set(FP_A, D2, allowByIndex, 60);
      expect(await cache.deleteDigest(D1)).toBe(2);
      expect(await cache.get(FP_A, D1)).toBeUndefined();
      expect(await cache.get(FP_B, D1)).toBeUndefined();
      expect((await cache.get(FP_A, D2))?.verdict).toEqual(allowByIndex);
      expect(await cache.deleteDigest(D1)).toBe(0);
      expect(await cache.deleteDigest(`sha256:${"9".repeat(64)}`)).toBe(0);
      // The digest can be cached again afterwards.
      await cache.set(FP_B, D1, allowBySignature, 60);
      expect((await cache.get(FP_B, D1))?.verdict).toEqual(allowBySignature);
    });
  });
}
