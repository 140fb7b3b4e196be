import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createMemoryVerdictCache } from "./memory-verdict-cache.ts";
import type { CachedVerdict } from "./types.ts";

const verdict = (decidedAt: number): CachedVerdict => ({ outcome: "allow", via: "signature", decidedAt });

describe("memory verdict cache", () => {
  test("evicts the least recently used entry; a get counts as a use", async () => {
    const cache = createMemoryVerdictCache({ maxEntries: 3 });
    await cache.set("fp", "d1", verdict(1), 60);
    await cache.set("fp", "d2", verdict(2), 60);
    await cache.set("fp", "d3", verdict(3), 60);
    expect(await cache.get("fp", "d1")).toBeDefined(); // order now d2, d3, d1
    await cache.set("fp", "d4", verdict(4), 60); // evicts d2
    expect(cache.size()).toBe(3);
    expect(await cache.get("fp", "d2")).toBeUndefined();
    await cache.set("fp", "d5", verdict(5), 60); // evicts d3
    expect(await cache.get("fp", "d3")).toBeUndefined();
    for (const d of ["d1", "d4", "d5"]) expect(await cache.get("fp", d)).toBeDefined();
  });

  test("replacing an entry neither grows the cache nor evicts another, and makes it the most recent", async () => {
    const cache = createMemoryVerdictCache({ maxEntries: 2 });
    await cache.set("fp", "d1", verdict(1), 60);
    await cache.set("fp", "d2", verdict(2), 60);
    await cache.set("fp", "d1", verdict(11), 60); // order d2, d1
    expect(cache.size()).toBe(2);
    await cache.set("fp", "d3", verdict(3), 60); // evicts d2
    expect((await cache.get("fp", "d1"))?.verdict.decidedAt).toBe(11);
    expect(await cache.get("fp", "d2")).toBeUndefined();
  });

  test("expiry follows the injected clock, per entry", async () => {
    let t = 1_000_000;
    const cache = createMemoryVerdictCache({ now: () => t });
    await cache.set("fp", "short", verdict(1), 10);
    await cache.set("fp", "long", verdict(2), 3600);
    t += 9_999;
    expect(await cache.get("fp", "short")).toBeDefined();
    t += 1;
    expect(await cache.get("fp", "short")).toBeUndefined();
    expect(cache.size()).toBe(1); // dropped on read
    t += 3_590_000;
    expect(await cache.get("fp", "long")).toBeUndefined();
  });

  test("fractional ttls (a remaining ttl copied from Redis) are honoured to the millisecond", async () => {
    let t = 0;
    const cache = createMemoryVerdictCache({ now: () => t });
    await cache.set("fp", "d", verdict(1), 1.234);
    t = 1_233;
    expect(await cache.get("fp", "d")).toBeDefined();
    t = 1_234;
    expect(await cache.get("fp", "d")).toBeUndefined();
  });

  test("deleteDigest only sees entries still held (evicted ones are gone from its index too)", async () => {
    const cache = createMemoryVerdictCache({ maxEntries: 2 });
    await cache.set("fp1", "d", verdict(1), 60);
    await cache.set("fp2", "d", verdict(2), 60);
    await cache.set("fp3", "other", verdict(3), 60); // evicts (fp1, d)
    expect(await cache.deleteDigest("d")).toBe(1);
    expect(cache.size()).toBe(1);
    expect(await cache.get("fp3", "other")).toBeDefined();
  });

  test("keys are unambiguous whatever the fingerprint and digest contain", async () => {
    const cache = createMemoryVerdictCache();
    await cache.set("a:b", "c", verdict(1), 60);
    expect(await cache.get("a", "b:c")).toBeUndefined();
    await cache.set("1:x", "y", verdict(2), 60);
    expect(await cache.get("1", ":xy")).toBeUndefined();
  });

  test("a ttl that is not positive stores nothing; maxEntries must be a positive integer", async () => {
    const cache = createMemoryVerdictCache();
    await cache.set("fp", "d", verdict(1), 0);
    await cache.set("fp", "d", verdict(1), -5);
    await cache.set("fp", "d", verdict(1), Number.NaN);
    expect(cache.size()).toBe(0);
    expect(() => createMemoryVerdictCache({ maxEntries: 0 })).toThrow(RangeError);
  });

  test("holds 100 000 entries by default and stays fast", async () => {
    const cache = createMemoryVerdictCache();
    const v = verdict(1);
    for (let i = 0; i < 100_010; i++) await cache.set("fp", `d${i}`, v, 60);
    expect(cache.size()).toBe(100_000);
    expect(await cache.get("fp", "d9")).toBeUndefined();
    expect(await cache.get("fp", "d10")).toBeDefined();
  });

  test("is bounded by bytes too: large verdicts evict least recently used ones before maxEntries", async () => {
    const cache = createMemoryVerdictCache({ maxEntries: 1_000, maxBytes: 10_000 });
    const big: CachedVerdict = { ...verdict(1), key: "k".repeat(1_000) }; // > 2 000 bytes each
    for (let i = 0; i < 20; i++) await cache.set("fp", `d${i}`, big, 60);
    expect(cache.bytes()).toBeLessThanOrEqual(10_000);
    expect(cache.size()).toBeLessThan(5);
    expect(await cache.get("fp", "d19")).toBeDefined();
    expect(await cache.get("fp", "d0")).toBeUndefined();
    // One verdict bigger than the whole bound is not kept, and takes nothing else with it.
    await cache.set("fp", "huge", { ...verdict(2), key: "k".repeat(10_000) }, 60);
    expect(await cache.get("fp", "huge")).toBeUndefined();
    expect(await cache.get("fp", "d19")).toBeDefined();
    expect(() => createMemoryVerdictCache({ maxBytes: 0 })).toThrow(RangeError);
  });

  test("an ordinary verdict costs under the 1 KiB per entry the default byte bound allows", async () => {
    const cache = createMemoryVerdictCache();
    const digest = `sha256:${"a".repeat(64)}`;
    const real: CachedVerdict = {
      ...verdict(1),
      key: "release-signing-key-2025",
      keyFingerprint: `sha256:${"b".repeat(64)}`,
    };
    await cache.set("c".repeat(32), digest, real, 60);
    expect(cache.bytes()).toBeLessThan(1024);
  });

  test("never exceeds either bound, and deleteDigest agrees with what get sees", async () => {
    const step = fc.oneof(
      fc.record({
        kind: fc.constant("set" as const),
        fp: fc.constantFrom("f1", "f2", "f3"),
        d: fc.constantFrom("d1", "d2", "d3", "d4"),
        keyLength: fc.integer({ min: 0, max: 300 }),
        ttl: fc.integer({ min: 1, max: 5 }),
      }),
      fc.record({ kind: fc.constant("delete" as const), d: fc.constantFrom("d1", "d2", "d3", "d4") }),
      fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 600, max: 3_000 }),
        fc.array(step, { maxLength: 40 }),
        async (maxEntries, maxBytes, steps) => {
          let t = 0;
          const cache = createMemoryVerdictCache({ maxEntries, maxBytes, now: () => t });
          for (const s of steps) {
            if (s.kind === "set")
              await cache.set(s.fp, s.d, { ...verdict(t), key: "k".repeat(s.keyLength) }, s.ttl);
            else if (s.kind === "tick") t += s.ms;
            else {
              let live = 0;
              for (const fp of ["f1", "f2", "f3"]) {
                // get refreshes recency but changes no membership: count what is live first.
                if (await cache.get(fp, s.d)) live++;
              }
              expect(await cache.deleteDigest(s.d)).toBe(live);
              for (const fp of ["f1", "f2", "f3"]) expect(await cache.get(fp, s.d)).toBeUndefined();
            }
            expect(cache.size()).toBeLessThanOrEqual(maxEntries);
            expect(cache.bytes()).toBeLessThanOrEqual(maxBytes);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
