import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createMemoryLogger } from "../telemetry/index.ts";
import type { AlertEntry, AttemptResult } from "./types.ts";
import { WebhookQueue, type WebhookQueueOptions } from "./webhook-queue.ts";

const T0 = Date.parse("2026-03-01T12:00:00Z");

function deny(digest: string, at = Date.now(), extra: Partial<AlertEntry> = {}): AlertEntry {
  return {
    event: "deny",
    project: "proj",
    upstream: "local",
    repository: "proj/app",
    digest,
    reason: "NO_SIGNATURE",
    count: 1,
    firstSeen: at,
    lastSeen: at,
    ...extra,
  };
}

type Sent = { at: number; entries: AlertEntry[]; dropped: number };

function setup(opts: Partial<WebhookQueueOptions> = {}, answers: AttemptResult[] = []) {
  const sent: Sent[] = [];
  const logger = createMemoryLogger();
  const queue = new WebhookQueue({
    name: "team",
    batchMs: 10_000,
    minIntervalMs: 30_000,
    maxBatchSize: 20,
    queueSize: 1_000,
    giveUpMs: 600_000,
    retry: { initialDelayMs: 1_000, maxDelayMs: 60_000 },
    random: () => 1, // the longest backoff: exact delays in the tests
    logger,
    send: async (entries, dropped) => {
      sent.push({ at: Date.now() - T0, entries: entries.map((e) => ({ ...e })), dropped });
      return answers.shift() ?? { ok: true, status: 200 };
    },
    ...opts,
  });
  return { queue, sent, logger };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("WebhookQueue: aggregation", () => {
  it("a denied image pulled a thousand times within the batch window is one alert with the count and times", async () => {
    const { queue, sent } = setup();
    for (let i = 0; i < 1000; i++) {
      queue.add(deny("sha256:aa"));
      await vi.advanceTimersByTimeAsync(5); // 5 s in all, within the 10 s window
    }
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.at).toBe(10_000); // the window starts with the first alert
    expect(sent[0]?.entries).toEqual([
      expect.objectContaining({ digest: "sha256:aa", count: 1000, firstSeen: T0, lastSeen: T0 + 4_995 }),
    ]);
    expect(queue.stats()).toMatchObject({ received: 1000, messagesSent: 1, alertsSent: 1, pending: 0 });
  });

  it("aggregates by (event, project, upstream, repository, digest, reason) and keeps them apart otherwise", async () => {
    const { queue, sent } = setup();
    queue.add(deny("sha256:aa"));
    queue.add(deny("sha256:aa"));
    queue.add(deny("sha256:bb"));
    queue.add(deny("sha256:aa", Date.now(), { event: "would-deny" }));
    queue.add(deny("sha256:aa", Date.now(), { reason: "UNTRUSTED_SIGNATURE" }));
    queue.add(deny("sha256:aa", Date.now(), { project: "other" }));
    queue.add(deny("sha256:aa", Date.now(), { repository: "proj/other" }));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.entries.map((e) => e.count)).toEqual([2, 1, 1, 1, 1, 1]);
  });

  it("keeps the first detail", async () => {
    const { queue, sent } = setup();
    queue.add(deny("sha256:aa", Date.now(), { detail: undefined }));
    queue.add(deny("sha256:aa", Date.now(), { detail: "first words" }));
    queue.add(deny("sha256:aa", Date.now(), { detail: "second words" }));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent[0]?.entries[0]?.detail).toBe("first words");
  });

  it("does not change the entry it was given", async () => {
    const { queue } = setup();
    const entry = deny("sha256:aa");
    queue.add(entry);
    queue.add(entry);
    expect(entry.count).toBe(1);
  });
});

describe("WebhookQueue: rate limits", () => {
  it("sends no two messages closer than minInterval; alerts of a running image merge until then", async () => {
    const { queue, sent } = setup();
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent.map((s) => s.at)).toEqual([10_000]);
    // The same image keeps being pulled: one more message per interval, with the count since the last one.
    for (let i = 0; i < 100; i++) {
      queue.add(deny("sha256:aa"));
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(40_000);
    expect(sent.map((s) => s.at)).toEqual([10_000, 40_000]);
    expect(sent[1]?.entries[0]?.count).toBe(100);
  });

  it("an alert after a quiet time still waits for its batch window", async () => {
    const { queue, sent } = setup();
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(100_000);
    queue.add(deny("sha256:bb"));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => s.at)).toEqual([10_000, 110_000]);
  });

  it("splits into messages of maxBatchSize, oldest first, each after minInterval", async () => {
    const { queue, sent } = setup({ maxBatchSize: 10 });
    for (let i = 0; i < 25; i++) queue.add(deny(`sha256:${i}`));
    await vi.advanceTimersByTimeAsync(100_000);
    expect(sent.map((s) => [s.at, s.entries.length])).toEqual([
      [10_000, 10],
      [40_000, 10],
      [70_000, 5],
    ]);
    expect(sent[0]?.entries[0]?.digest).toBe("sha256:0");
    expect(sent[2]?.entries[4]?.digest).toBe("sha256:24");
  });

  it("a full queue folds new images into their project's alert: a flood says how many, and loses nothing", async () => {
    const { queue, sent } = setup({ queueSize: 3 });
    for (let i = 0; i < 1_000; i++) queue.add(deny(`sha256:${i}`));
    queue.add(deny("sha256:1")); // an image already waiting merges into its own alert
    queue.add(deny("sha256:x", Date.now(), { project: "other", repository: "other/app" }));
    expect(queue.stats()).toMatchObject({ pending: 5, dropped: 0 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent[0]?.dropped).toBe(0);
    expect(sent[0]?.entries.map((e) => [e.project, e.digest, e.example, e.count])).toEqual([
      ["proj", "sha256:0", undefined, 1],
      ["proj", "sha256:1", undefined, 2],
      ["proj", "sha256:2", undefined, 1],
      ["proj", undefined, "proj/app@sha256:3", 997],
      ["other", undefined, "other/app@sha256:x", 1],
    ]);
  });

  it("drops the oldest only past twice queueSize (projects' alerts are few: this is a backstop)", async () => {
    const { queue, sent } = setup({ queueSize: 2 });
    for (let p = 0; p < 6; p++)
      queue.add(deny(`sha256:${p}`, Date.now(), { project: `p${p}`, repository: `p${p}/a` }));
    expect(queue.stats()).toMatchObject({ pending: 4, dropped: 2 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent[0]?.dropped).toBe(2);
  });

  it("sends one message at a time: alerts queued during a delivery go in the next one", async () => {
    const { queue, sent } = setup({ minIntervalMs: 0 }, [{ ok: false, retryable: true, status: 503 }]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000); // first attempt fails; retry in 1 s
    queue.add(deny("sha256:bb"));
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(1_000); // the retry: the same message
    expect(sent.map((s) => s.entries.map((e) => [e.digest, e.count]))).toEqual([
      [["sha256:aa", 1]],
      [["sha256:aa", 1]],
    ]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent[2]?.entries.map((e) => [e.digest, e.count])).toEqual([
      ["sha256:bb", 1],
      ["sha256:aa", 1],
    ]);
  });
});

describe("WebhookQueue: retries", () => {
  it("retries 5xx, 429 and network errors with exponential backoff, then delivers", async () => {
    const { queue, sent, logger } = setup({}, [
      { ok: false, retryable: true, status: 500 },
      { ok: false, retryable: true, error: "ECONNREFUSED" },
      { ok: false, retryable: true, status: 429 },
    ]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(60_000);
    // random() = 1: waits of 1 s, 2 s, 4 s.
    expect(sent.map((s) => s.at)).toEqual([10_000, 11_000, 13_000, 17_000]);
    expect(queue.stats()).toMatchObject({ messagesSent: 1, retries: 3, messagesFailed: 0 });
    const failures = logger.records.filter((r) => r.event === "alert delivery failed");
    expect(failures.map((r) => [r.status ?? r.error, r.retryInMs])).toEqual([
      [500, 1_000],
      ["ECONNREFUSED", 2_000],
      [429, 4_000],
    ]);
    expect(failures.every((r) => r.webhook === "team")).toBe(true);
  });

  it("honours Retry-After when it is longer than the backoff", async () => {
    const { queue, sent } = setup({}, [{ ok: false, retryable: true, status: 429, retryAfterMs: 30_000 }]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(39_999);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => s.at)).toEqual([10_000, 40_000]);
  });

  it("jitters each wait within [half, all] of its cap", async () => {
    const { queue, sent } = setup({ random: () => 0 }, [
      { ok: false, retryable: true, status: 502 },
      { ok: false, retryable: true, status: 502 },
    ]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sent.map((s) => s.at)).toEqual([10_000, 10_500, 11_500]);
  });

  it("gives up after giveUpMs, logs it by name, and goes on with the next message", async () => {
    const failing: AttemptResult = { ok: false, retryable: true, status: 503 };
    const { queue, sent, logger } = setup(
      { giveUpMs: 20_000, minIntervalMs: 0 },
      Array.from({ length: 5 }, () => failing),
    );
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000 + 20_000);
    // Attempts at +0, +1, +3, +7, +15 s; the next would be at +31 s > 20 s.
    expect(sent.map((s) => s.at)).toEqual([10_000, 11_000, 13_000, 17_000, 25_000]);
    expect(logger.records.find((r) => r.event === "alert delivery given up")).toMatchObject({
      level: "warn",
      webhook: "team",
      why: "gave up",
      attempts: 5,
      status: 503,
    });
    expect(queue.stats()).toMatchObject({ messagesFailed: 1, alertsFailed: 1, pending: 0 });
    queue.add(deny("sha256:bb"));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent.at(-1)?.entries[0]?.digest).toBe("sha256:bb");
    expect(queue.stats().messagesSent).toBe(1);
  });

  it("does not retry an answer that would not change (400, 404, a redirect)", async () => {
    const { queue, sent, logger } = setup({}, [{ ok: false, retryable: false, status: 404 }]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(100_000);
    expect(sent).toHaveLength(1);
    expect(logger.records.find((r) => r.event === "alert delivery given up")).toMatchObject({
      why: "refused",
      status: 404,
    });
  });

  it("a send that throws is logged and given up, never thrown", async () => {
    const { queue, logger } = setup({
      send: () => Promise.reject(new TypeError("secret https://hooks.example/T0/B0/XYZ")),
    });
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(queue.stats().messagesFailed).toBe(1);
    expect(JSON.stringify(logger.records)).not.toContain("hooks.example");
  });
});

describe("WebhookQueue: stop", () => {
  it("sends what is queued once, at once, without waiting for the batch window", async () => {
    const { queue, sent } = setup();
    queue.add(deny("sha256:aa"));
    queue.add(deny("sha256:aa"));
    await queue.stop(5_000);
    expect(sent).toEqual([{ at: 0, entries: [expect.objectContaining({ count: 2 })], dropped: 0 }]);
    queue.add(deny("sha256:bb")); // after stop: dropped
    await vi.advanceTimersByTimeAsync(100_000);
    expect(sent).toHaveLength(1);
    expect(queue.stats().dropped).toBe(1);
  });

  it("a message waiting to be retried gets one last attempt, together with what is queued", async () => {
    const { queue, sent } = setup({ maxBatchSize: 20 }, [{ ok: false, retryable: true, status: 500 }]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000);
    queue.add(deny("sha256:bb"));
    await queue.stop(5_000);
    expect(sent.map((s) => s.entries.map((e) => e.digest))).toEqual([
      ["sha256:aa"],
      ["sha256:aa", "sha256:bb"],
    ]);
    expect(queue.stats()).toMatchObject({ messagesSent: 1, pending: 0 });
  });

  it("is bounded: a receiver that does not answer is given up after flushMs", async () => {
    const { queue, logger } = setup({ send: () => new Promise<AttemptResult>(() => {}) });
    for (let i = 0; i < 50; i++) queue.add(deny(`sha256:${i}`));
    const stopped = queue.stop(2_000);
    await vi.advanceTimersByTimeAsync(2_000);
    await stopped;
    expect(queue.stats()).toMatchObject({ pending: 0, alertsFailed: 50 });
    expect(logger.records.filter((r) => r.event === "alert delivery given up").length).toBeGreaterThan(0);
  });

  it("cuts the attempt under way when flushMs is up, and counts its alerts as failed", async () => {
    const { queue, logger } = setup({
      send: (_entries, _dropped, signal) =>
        new Promise<AttemptResult>((resolve) =>
          signal?.addEventListener("abort", () =>
            resolve({ ok: false, retryable: true, error: "AbortError" }),
          ),
        ),
    });
    queue.add(deny("sha256:aa"));
    queue.add(deny("sha256:bb"));
    await vi.advanceTimersByTimeAsync(10_000); // the batch window: the message is under way, and hangs
    const stopped = queue.stop(500);
    await vi.advanceTimersByTimeAsync(500);
    await stopped;
    expect(queue.stats()).toMatchObject({ pending: 0, alertsFailed: 2, retries: 0 });
    expect(logger.records).toContainEqual(
      expect.objectContaining({ event: "alert delivery given up", why: "at shutdown", alerts: 2 }),
    );
  });

  it("leaves no timer behind", async () => {
    const { queue } = setup({}, [{ ok: false, retryable: true, status: 500 }]);
    queue.add(deny("sha256:aa"));
    await vi.advanceTimersByTimeAsync(10_000);
    await queue.stop(1_000);
    expect(vi.getTimerCount()).toBe(0);
  });
});
