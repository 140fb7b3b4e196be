import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, deliverWithRetry, parseRetryAfter } from "./backoff.ts";
import type { AttemptResult } from "./types.ts";

const POLICY = { initialDelayMs: 1_000, maxDelayMs: 60_000, giveUpMs: 600_000 };

afterEach(() => {
  vi.useRealTimers();
});

describe("backoffDelay", () => {
  it("doubles from initialDelayMs up to maxDelayMs, jittered within [half, all] of the cap", () => {
    const caps = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(n, POLICY, () => 1));
    expect(caps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect([1, 3, 7].map((n) => backoffDelay(n, POLICY, () => 0))).toEqual([500, 2_000, 30_000]);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(4, POLICY);
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(8_000);
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  it("reads delay-seconds and HTTP dates", () => {
    expect(parseRetryAfter("30", now)).toBe(30_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Sun, 01 Mar 2026 12:00:45 GMT", now)).toBe(45_000);
    expect(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now)).toBe(0);
  });
  it("ignores what it cannot read and caps what is too long", () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter("999999999", now)).toBe(3_600_000);
  });
});

describe("deliverWithRetry", () => {
  it("stops waiting at once when stopped, and says the message is undelivered", async () => {
    vi.useFakeTimers();
    const stop = new AbortController();
    const attempt = vi.fn(async (): Promise<AttemptResult> => ({ ok: false, retryable: true, status: 500 }));
    const done = deliverWithRetry(attempt, { policy: POLICY, stop: stop.signal });
    await vi.advanceTimersByTimeAsync(100);
    stop.abort();
    expect(await done).toMatchObject({ kind: "stopped", attempts: 1 });
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it("gives up when the wait Retry-After asks for ends past giveUpMs", async () => {
    vi.useFakeTimers();
    const attempt = vi.fn(
      async (): Promise<AttemptResult> => ({
        ok: false,
        retryable: true,
        status: 429,
        retryAfterMs: 700_000,
      }),
    );
    const outcome = await deliverWithRetry(attempt, { policy: POLICY, stop: new AbortController().signal });
    expect(outcome).toMatchObject({ kind: "gave-up", attempts: 1 });
  });
});
