import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoundedLru, stringBytes } from "./bounded-lru.ts";

interface Value {
  id: number;
  size: number;
}

type Op =
  | { kind: "set"; key: string; size: number; ttlMs: number | undefined }
  | { kind: "get"; key: string }
  | { kind: "delete"; key: string }
  | { kind: "tick"; ms: number }
  | { kind: "clear" };

const key = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h");
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      key,
      size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 200 })),
      ttlMs: fc.option(fc.integer({ min: -5, max: 50 }), { nil: undefined }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("get" as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 30 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);
const bounds = fc.record({
  maxEntries: fc.integer({ min: 0, max: 6 }),
  maxBytes: fc.integer({ min: 0, max: 150 }),
});

/** The obvious, slow LRU the real one must agree with: an array, most recent last. */
class ReferenceLru {
  entries: { key: string; value: Value; expiresAt: number }[] = [];
  readonly maxEntries: number;
  readonly maxBytes: number;
  constructor(maxEntries: number, maxBytes: number) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }
  bytes(): number {
    return this.entries.reduce((sum, e) => sum + e.value.size, 0);
  }
  get(k: string, now: number): Value | undefined {
    const i = this.entries.findIndex((e) => e.key === k);
    if (i < 0) return undefined;
    const [e] = this.entries.splice(i, 1);
    if (!e || e.expiresAt <= now) return undefined;
    this.entries.push(e);
    return e.value;
  }
  set(k: string, value: Value, expiresAt: number, now: number): void {
    this.entries = this.entries.filter((e) => e.key !== k);
    if (value.size > this.maxBytes || this.maxEntries === 0 || expiresAt <= now) return;
    this.entries.push({ key: k, value, expiresAt });
    while (this.entries.length > this.maxEntries || this.bytes() > this.maxBytes) this.entries.shift();
  }
}

describe("BoundedLru", () => {
  it("agrees with a reference LRU and never holds more than either bound or returns an expired entry", () => {
    fc.assert(
      fc.property(bounds, fc.array(op, { maxLength: 80 }), ({ maxEntries, maxBytes }, ops) => {
        let now = 1_000;
        const held = new Set<string>();
        const lru = new BoundedLru<Value>({
          maxEntries,
          maxBytes,
          sizeOf: (v) => v.size,
          now: () => now,
          onRemove: (k) => {
            // Called once per entry that leaves: never for a key not held.
            expect(held.delete(k)).toBe(true);
          },
        });
        const ref = new ReferenceLru(maxEntries, maxBytes);
        const expiry = new Map<number, number>();
        let ids = 0;
        for (const o of ops) {
          switch (o.kind) {
            case "set": {
              const value = { id: ids++, size: o.size };
              const expiresAt = o.ttlMs === undefined ? Number.POSITIVE_INFINITY : now + o.ttlMs;
              expiry.set(value.id, expiresAt);
              const stored = lru.set(o.key, value, expiresAt);
              if (stored) held.add(o.key);
              ref.set(o.key, value, expiresAt, now);
              expect(stored).toBe(ref.entries.at(-1)?.value === value);
              // The entry just stored is always kept: eviction takes older ones first.
              if (stored) expect(lru.size).toBeGreaterThan(0);
              break;
            }
            case "get": {
              const got = lru.get(o.key);
              expect(got).toBe(ref.get(o.key, now));
              if (got) expect(expiry.get(got.id)).toBeGreaterThan(now);
              break;
            }
            case "delete": {
              const live = ref.entries.some((e) => e.key === o.key && e.expiresAt > now);
              ref.entries = ref.entries.filter((e) => e.key !== o.key);
              expect(lru.delete(o.key)).toBe(live);
              break;
            }
            case "tick":
              now += o.ms;
              break;
            case "clear":
              lru.clear();
              ref.entries = [];
              break;
          }
          expect(lru.size).toBeLessThanOrEqual(maxEntries);
          expect(lru.bytes).toBeLessThanOrEqual(maxBytes);
          expect(lru.size).toBe(ref.entries.length);
          expect(lru.bytes).toBe(ref.bytes());
          expect([...held].sort()).toEqual(ref.entries.map((e) => e.key).sort());
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps the most recently used entry when it makes room", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 20 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 60 }),
        fc.nat(),
        (maxEntries, sizes, pick) => {
          const lru = new BoundedLru<number>({ maxEntries, maxBytes: 60, sizeOf: (v) => v });
          sizes.forEach((s, i) => {
            lru.set(`k${i}`, s);
          });
          const held = sizes.map((_, i) => `k${i}`).filter((k) => lru.get(k) !== undefined);
          if (held.length === 0) return;
          const recent = held[pick % held.length] as string;
          const value = lru.get(recent) as number;
          // Another entry that fits beside it: the one just used survives.
          lru.set("new", 60 - value);
          expect(lru.get(recent)).toBe(value);
          expect(lru.get("new")).toBe(60 - value);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("does not store an entry bigger than maxBytes, and drops what the key held", () => {
    const removed: string[] = [];
    const lru = new BoundedLru<string>({
      maxEntries: 10,
      maxBytes: 100,
      sizeOf: (v, k) => stringBytes(v) + stringBytes(k),
      onRemove: (k) => removed.push(k),
    });
    expect(lru.set("k", "x".repeat(49))).toBe(true); // 98 + 2 bytes
    expect(lru.bytes).toBe(100);
    expect(lru.set("k", "x".repeat(50))).toBe(false);
    expect(lru.get("k")).toBeUndefined();
    expect(lru.size).toBe(0);
    expect(lru.bytes).toBe(0);
    expect(removed).toEqual(["k"]);
  });

  it("evicts by bytes before the entry bound is reached", () => {
    const lru = new BoundedLru<string>({ maxEntries: 1_000, maxBytes: 1_000, sizeOf: (v) => stringBytes(v) });
    for (let i = 0; i < 100; i++) lru.set(`k${i}`, "v".repeat(100)); // 200 bytes each
    expect(lru.size).toBe(5);
    expect(lru.bytes).toBe(1_000);
    expect(lru.get("k94")).toBeUndefined();
    expect(lru.get("k95")).toBeDefined();
  });

  it("expires entries on the injected clock and refuses ones already expired", () => {
    let t = 0;
    const lru = new BoundedLru<string>({ maxEntries: 10, maxBytes: 1_000, sizeOf: () => 1, now: () => t });
    lru.set("a", "A", 100);
    expect(lru.set("b", "B", 0)).toBe(false);
    t = 99;
    expect(lru.get("a")).toBe("A");
    t = 100;
    expect(lru.get("a")).toBeUndefined();
    expect(lru.size).toBe(0);
  });

  it("rounds byte counts up to whole bytes and refuses sizes that are not finite numbers ≥ 0", () => {
    const sizes = [0.5, Number.NaN, -1, Number.POSITIVE_INFINITY];
    const lru = new BoundedLru<number>({ maxEntries: 10, maxBytes: 10, sizeOf: (i) => sizes[i] as number });
    expect(lru.set("half", 0)).toBe(true);
    expect(lru.bytes).toBe(1);
    for (const i of [1, 2, 3]) expect(lru.set(`bad${i}`, i)).toBe(false);
    expect(lru.size).toBe(1);
  });

  it("rejects bounds that are not numbers ≥ 0", () => {
    const sizeOf = () => 1;
    expect(() => new BoundedLru({ maxEntries: -1, maxBytes: 1, sizeOf })).toThrow(RangeError);
    expect(() => new BoundedLru({ maxEntries: 1.5, maxBytes: 1, sizeOf })).toThrow(RangeError);
    expect(() => new BoundedLru({ maxEntries: 1, maxBytes: Number.NaN, sizeOf })).toThrow(RangeError);
    const none = new BoundedLru({ maxEntries: 0, maxBytes: 100, sizeOf });
    expect(none.set("a", 1)).toBe(false);
  });
});
