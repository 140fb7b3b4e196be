import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createMemoryLogger } from "../telemetry/index.ts";
import { KmsKeyring, type KmsKeyringOptions, type KmsKeyState } from "./kms-keyring.ts";
import { type FetchKmsPublicKey, KmsError, type KmsPublicKey, type KmsReference } from "./types.ts";

// The keyring's timing and state rules against an in-memory fetch (no SDK, no server; fake timers).

const A = "awskms:///alias/a";
const B = "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1";
const C = "awskms://localhost:4566/alias/c";
const HOUR = 60 * 60 * 1000;

const key = (name: string): KmsPublicKey => ({
  pem: `-----BEGIN PUBLIC KEY-----\n${name}\n-----END PUBLIC KEY-----\n`,
  fingerprint: `sha256:${name}`,
  signingAlgorithms: ["ECDSA_SHA_256"],
});
const unavailable = (uri: string) => new KmsError("UNAVAILABLE", uri, "KMS unavailable (UNAVAILABLE)");

type Answer =
  | KmsPublicKey
  | KmsError
  | Error
  | ((ref: KmsReference, signal: AbortSignal) => Promise<KmsPublicKey>);

function fakeKms() {
  const answers = new Map<string, Answer>();
  const calls: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const fetchPublicKey: FetchKmsPublicKey = async (ref, signal) => {
    calls.push(ref.uri);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      const answer =
        answers.get(ref.uri) ?? new KmsError("NOT_FOUND", ref.uri, "not found (NotFoundException)");
      if (typeof answer === "function") return await answer(ref, signal);
      if (answer instanceof Error) throw answer;
      return answer;
    } finally {
      running -= 1;
    }
  };
  return {
    answers,
    calls,
    fetchPublicKey,
    get maxRunning() {
      return maxRunning;
    },
  };
}

/** A fetch that never settles on its own; it rejects when its signal aborts, if `honour`. */
const hang =
  (honour = true) =>
  (_ref: KmsReference, signal: AbortSignal) =>
    new Promise<KmsPublicKey>((_resolve, reject) => {
      if (honour) signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    });

let now = 1_000_000;
const keyrings: KmsKeyring[] = [];
function makeKeyring(kms: ReturnType<typeof fakeKms>, options: Partial<KmsKeyringOptions> = {}) {
  const logger = createMemoryLogger();
  const keyring = new KmsKeyring({
    fetchPublicKey: kms.fetchPublicKey,
    logger,
    timeoutMs: 1_000,
    now: () => now,
    ...options,
  });
  keyrings.push(keyring);
  const changes: Array<[string, KmsKeyState]> = [];
  keyring.onChange((uri, state) => changes.push([uri, state]));
  return { keyring, logger, changes };
}

beforeEach(() => {
  vi.useFakeTimers();
  now = 1_000_000;
});

afterEach(() => {
  for (const k of keyrings.splice(0)) k.stop();
  vi.useRealTimers();
});

describe("KmsKeyring", () => {
  it("is pending until start(), which fetches every key once; states and onChange follow", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    kms.answers.set(B, key("b"));
    const { keyring, changes } = makeKeyring(kms);
    for (const uri of [A, B, C]) expect(keyring.track(uri)).toEqual({ state: "pending" });
    expect(keyring.get(A)).toEqual({ state: "pending" });
    expect(kms.calls).toEqual([]);

    await keyring.start();
    expect(kms.calls.sort()).toEqual([A, B, C].sort());
    expect(keyring.get(A)).toEqual({
      state: "ready",
      pem: key("a").pem,
      fingerprint: "sha256:a",
      signingAlgorithms: ["ECDSA_SHA_256"],
      fetchedAt: now,
    });
    expect(keyring.get(C)).toEqual({
      state: "failed",
      code: "NOT_FOUND",
      problem: `${C}: not found (NotFoundException)`,
    });
    expect(changes.map(([uri, s]) => `${uri} ${s.state}`).sort()).toEqual(
      [`${A} ready`, `${B} ready`, `${C} failed`].sort(),
    );
    expect(keyring.uris()).toEqual([A, B, C]);
    expect(keyring.get("awskms:///alias/untracked")).toBeUndefined();
  });

  it("refreshes hourly; the same PEM changes nothing but fetchedAt, a rotated one fires onChange", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    const { keyring, changes } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    changes.length = 0;

    now += HOUR;
    await vi.advanceTimersByTimeAsync(HOUR - 1);
    expect(kms.calls).toEqual([A]);
    await vi.advanceTimersByTimeAsync(1);
    expect(kms.calls).toEqual([A, A]);
    expect(keyring.get(A)).toMatchObject({ state: "ready", fetchedAt: now });
    expect(changes).toEqual([]);

    kms.answers.set(A, key("a2"));
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(keyring.get(A)).toMatchObject({ state: "ready", pem: key("a2").pem });
    expect(changes).toEqual([[A, keyring.get(A)]]);
  });

  it("keeps the last good key when a refresh fails, warns, retries with backoff, and clears the problem after", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    const { keyring, changes, logger } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    const fetchedAt = now;
    changes.length = 0;

    kms.answers.set(A, unavailable(A));
    now += HOUR;
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(keyring.get(A)).toEqual({
      state: "ready",
      pem: key("a").pem,
      fingerprint: "sha256:a",
      signingAlgorithms: ["ECDSA_SHA_256"],
      fetchedAt,
      refreshProblem: `${A}: KMS unavailable (UNAVAILABLE)`,
    });
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: "warn",
        event: "kms key refresh failed, keeping the last good key",
        uri: A,
        code: "UNAVAILABLE",
        retryInMs: 5_000,
      }),
    );
    // Retried after 5 s, then 10 s: sooner than hourly.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(kms.calls.length).toBe(3);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(kms.calls.length).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(kms.calls.length).toBe(4);

    kms.answers.set(A, key("a"));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(keyring.get(A)).toEqual({
      state: "ready",
      pem: key("a").pem,
      fingerprint: "sha256:a",
      signingAlgorithms: ["ECDSA_SHA_256"],
      fetchedAt: now,
    });
    expect(changes).toEqual([]);
  });

  it.each([
    ["NOT_FOUND", "not found (NotFoundException)"],
    ["KEY_STATE", "key disabled (DisabledException)"],
    ["WRONG_KEY", "key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY"],
  ] as const)("believes the KMS at once when it says %s: the ready key fails", async (code, words) => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    const { keyring, changes, logger } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    kms.answers.set(A, new KmsError(code, A, words));
    await keyring.refresh(A);
    expect(keyring.get(A)).toEqual({ state: "failed", code, problem: `${A}: ${words}` });
    expect(changes.at(-1)).toEqual([A, keyring.get(A)]);
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: "error", event: "kms key unavailable" }),
    );
  });

  it("retries a failed key after 5 s, doubling up to 5 min; it becomes ready when the KMS answers", async () => {
    const kms = fakeKms();
    kms.answers.set(A, unavailable(A));
    const { keyring, changes } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    const gaps: number[] = [];
    let last = 0;
    for (let t = 0; t <= 20 * 60 * 1000; t += 1000) {
      await vi.advanceTimersByTimeAsync(1000);
      if (kms.calls.length > gaps.length + 1) {
        gaps.push(t + 1000 - last);
        last = t + 1000;
      }
    }
    expect(gaps.slice(0, 8)).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
    expect(changes.map(([, s]) => s.state)).toEqual(["failed"]);

    kms.answers.set(A, key("a"));
    await vi.advanceTimersByTimeAsync(300_000);
    expect(keyring.get(A)).toMatchObject({ state: "ready" });
    expect(changes.map(([, s]) => s.state)).toEqual(["failed", "ready"]);
  });

  it("a key whose fetch is under way is pending; a fetch that never answers fails at the deadline, even if it ignores its signal", async () => {
    const kms = fakeKms();
    kms.answers.set(A, hang(true));
    kms.answers.set(B, hang(false));
    const { keyring } = makeKeyring(kms, { timeoutMs: 1_000 });
    keyring.track(A);
    keyring.track(B);
    let started = false;
    const start = keyring.start().then(() => {
      started = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(started).toBe(false);
    expect(keyring.get(A)).toEqual({ state: "pending" });
    await vi.advanceTimersByTimeAsync(1);
    await start;
    for (const uri of [A, B]) {
      expect(keyring.get(uri)).toEqual({
        state: "failed",
        code: "TIMEOUT",
        problem: `${uri}: no answer within 1000 ms`,
      });
    }
  });

  it("a key tracked after start() is fetched at once", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    kms.answers.set(B, key("b"));
    const { keyring, changes } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    expect(keyring.track(B)).toEqual({ state: "pending" });
    await vi.advanceTimersByTimeAsync(0);
    expect(keyring.get(B)).toMatchObject({ state: "ready", pem: key("b").pem });
    expect(changes.at(-1)?.[0]).toBe(B);
    expect(keyring.track(B)).toBe(keyring.get(B));
  });

  it("refuses a reference that does not parse, and more than maxKeys, without tracking them", () => {
    const { keyring } = makeKeyring(fakeKms(), { maxKeys: 2 });
    expect(keyring.track("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")).toMatchObject({
      state: "failed",
      problem: expect.stringMatching(/^kms: a gcpkms reference must name its key version/),
    });
    keyring.track(A);
    keyring.track(B);
    expect(keyring.track(C)).toEqual({
      state: "failed",
      code: "FAILED",
      problem: `kms: ${C}: not tracked, pullgate tracks at most 2 KMS keys`,
    });
    expect(keyring.uris()).toEqual([A, B]);
    keyring.untrack(A);
    expect(keyring.track(C)).toEqual({ state: "pending" });
  });

  it("runs at most maxConcurrentFetches fetches at once", async () => {
    const kms = fakeKms();
    const uris = Array.from({ length: 6 }, (_, i) => `awskms:///alias/k${i}`);
    for (const uri of uris) {
      kms.answers.set(uri, () => new Promise((resolve) => setTimeout(() => resolve(key(uri)), 100)));
    }
    const { keyring } = makeKeyring(kms, { maxConcurrentFetches: 2 });
    for (const uri of uris) keyring.track(uri);
    const start = keyring.start();
    await vi.advanceTimersByTimeAsync(300);
    await start;
    expect(kms.maxRunning).toBe(2);
    expect(uris.every((uri) => keyring.get(uri)?.state === "ready")).toBe(true);
  });

  it("one refresh at a time per key", async () => {
    const kms = fakeKms();
    kms.answers.set(A, () => new Promise((resolve) => setTimeout(() => resolve(key("a")), 100)));
    const { keyring } = makeKeyring(kms);
    keyring.track(A);
    const start = keyring.start();
    const again = keyring.refresh(A);
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([start, again]);
    expect(kms.calls).toEqual([A]);
  });

  it("a listener that throws is logged and the others still hear", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    const { keyring, logger, changes } = makeKeyring(kms);
    keyring.onChange(() => {
      throw new TypeError("listener bug");
    });
    const heard: string[] = [];
    const unsubscribe = keyring.onChange((uri) => heard.push(uri));
    keyring.track(A);
    await keyring.start();
    expect(heard).toEqual([A]);
    expect(changes.length).toBe(1);
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: "error", event: "kms key listener failed", error: "TypeError" }),
    );
    unsubscribe();
    kms.answers.set(A, key("a2"));
    await keyring.refresh(A);
    expect(heard).toEqual([A]);
  });

  it("an exception that is not a KmsError becomes FAILED with its type name only", async () => {
    const kms = fakeKms();
    kms.answers.set(A, new TypeError("secret-looking detail"));
    const { keyring } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    expect(keyring.get(A)).toEqual({ state: "failed", code: "FAILED", problem: `${A}: failed (TypeError)` });
  });

  it("unref()s its timers; stop() clears them all, abandons fetches under way and fetches nothing more", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    kms.answers.set(B, unavailable(B));
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    const { keyring } = makeKeyring(kms);
    keyring.track(A);
    keyring.track(B);
    await keyring.start();
    expect(vi.getTimerCount()).toBe(2);
    for (const result of setTimeoutSpy.mock.results) {
      expect((result.value as NodeJS.Timeout).hasRef()).toBe(false);
    }
    setTimeoutSpy.mockRestore();

    kms.answers.set(C, hang(true));
    keyring.track(C);
    await vi.advanceTimersByTimeAsync(0);
    keyring.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10 * HOUR);
    expect(kms.calls.sort()).toEqual([A, B, C].sort());
    expect(keyring.get(C)).toEqual({ state: "pending" });
    expect(keyring.get(A)).toMatchObject({ state: "ready" });
    // Tracking or refreshing after stop() fetches nothing.
    keyring.track("awskms:///alias/late");
    await keyring.refresh(A);
    await keyring.start();
    expect(kms.calls.length).toBe(3);
  });

  it("untrack() clears the key's timer and ignores its fetch under way", async () => {
    const kms = fakeKms();
    kms.answers.set(A, key("a"));
    kms.answers.set(B, () => new Promise((resolve) => setTimeout(() => resolve(key("b")), 100)));
    const { keyring, changes } = makeKeyring(kms);
    keyring.track(A);
    await keyring.start();
    keyring.untrack(A);
    expect(vi.getTimerCount()).toBe(0);
    keyring.track(B);
    await vi.advanceTimersByTimeAsync(10);
    keyring.untrack(B);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(keyring.get(B)).toBeUndefined();
    expect(changes.map(([uri]) => uri)).toEqual([A]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
