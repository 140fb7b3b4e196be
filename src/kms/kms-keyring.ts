import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import { errorTypeName, raceAbort } from "./kms-error-words.ts";
import { parseKmsReference } from "./parse-kms-reference.ts";
import {
  DEFAULT_KMS_TIMEOUT_MS,
  type FetchKmsPublicKey,
  KmsError,
  type KmsErrorCode,
  type KmsPublicKey,
  type KmsReference,
} from "./types.ts";

/** What the keyring knows of one reference. */
export type KmsKeyState =
  /** Tracked, not fetched yet (before start(), or its first fetch is under way). */
  | { readonly state: "pending" }
  | {
      readonly state: "ready";
      readonly pem: string;
      readonly fingerprint: string;
      readonly signingAlgorithms: readonly string[];
      /** When this PEM was last fetched (ms since the epoch); refreshes that return the same PEM move it. */
      readonly fetchedAt: number;
      /** Why the latest refresh failed, while the last good key is kept; absent when it succeeded. */
      readonly refreshProblem?: string;
    }
  /** Never fetched successfully; `problem` starts with the reference. */
  | { readonly state: "failed"; readonly code: KmsErrorCode; readonly problem: string };

export type KmsKeyListener = (uri: string, state: KmsKeyState) => void;

export interface KmsKeyringOptions {
  fetchPublicKey: FetchKmsPublicKey;
  logger?: Logger;
  /** Refresh of a ready key (default one hour). */
  refreshMs?: number;
  /** Deadline of each fetch (default 10 s). */
  timeoutMs?: number;
  /** Retry of a failed fetch: first after retryMinMs (5 s), doubling up to retryMaxMs (5 min). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** References tracked at most (default 1000); track() refuses more. */
  maxKeys?: number;
  /** Fetches under way at once (default 8). */
  maxConcurrentFetches?: number;
  /** Clock for fetchedAt (tests). */
  now?: () => number;
}

interface Entry {
  readonly ref: KmsReference;
  state: KmsKeyState;
  timer: ReturnType<typeof setTimeout> | undefined;
  inFlight: Promise<void> | undefined;
  failures: number;
}

export const DEFAULT_KMS_REFRESH_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_KMS_KEYS = 1000;

const PENDING: KmsKeyState = Object.freeze({ state: "pending" });

/** Answers by which the KMS says a key is gone or unusable: a ready key is dropped, not kept. */
const REVOKING_CODES: ReadonlySet<KmsErrorCode> = new Set(["NOT_FOUND", "KEY_STATE", "WRONG_KEY"]);

/**
 * The public keys of KMS references, fetched at start, refreshed hourly, kept when a refresh fails.
 * - `track(uri)` adds a reference (config file keys, later admin-API keys); after `start()` it is
 *   fetched at once. `get(uri)` says where it stands; `onChange` fires when a key's state changes
 *   (pending, ready, failed) or its PEM does (a re-pointed alias): the policy registry rebuilds then.
 * - A failed fetch is retried after 5 s, 10 s, 20 s… up to 5 min. A ready key whose refresh fails
 *   keeps its last good PEM (a warning is logged, `refreshProblem` says why) and is retried the same
 *   way, unless the KMS itself said the key is gone or unusable (NOT_FOUND, KEY_STATE: deleted,
 *   disabled, pending deletion; WRONG_KEY): disabling a key is how a compromised one is revoked, so
 *   that answer is believed at once and the key fails.
 * - Bounded: `maxKeys` references, `maxConcurrentFetches` fetches at once, each within `timeoutMs`;
 *   every timer is unref()ed, and `stop()` clears them all and abandons fetches under way.
 */
export class KmsKeyring {
  readonly #fetch: FetchKmsPublicKey;
  readonly #logger: Logger | undefined;
  readonly #refreshMs: number;
  readonly #timeoutMs: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #maxKeys: number;
  readonly #maxConcurrent: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<KmsKeyListener>();
  readonly #stopped = new AbortController();
  #started = false;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** Deadline timers of fetches under way (stop() clears them at once). */
  readonly #deadlines = new Set<ReturnType<typeof setTimeout>>();

  constructor(options: KmsKeyringOptions) {
    this.#fetch = options.fetchPublicKey;
    this.#logger = options.logger;
    this.#refreshMs = options.refreshMs ?? DEFAULT_KMS_REFRESH_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_KMS_TIMEOUT_MS;
    this.#retryMinMs = options.retryMinMs ?? 5_000;
    this.#retryMaxMs = options.retryMaxMs ?? 5 * 60 * 1000;
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KMS_KEYS;
    this.#maxConcurrent = Math.max(1, options.maxConcurrentFetches ?? 8);
    this.#now = options.now ?? Date.now;
  }

  /**
   * Tracks `uri` (once; tracking it again changes nothing) and returns its state. A reference that
   * does not parse, or one over `maxKeys`, is not tracked: the returned failed state says why.
   */
  track(uri: string): KmsKeyState {
    const existing = this.#entries.get(uri);
    if (existing !== undefined) return existing.state;
    const ref = parseKmsReference(uri);
    if (typeof ref === "string") return Object.freeze({ state: "failed", code: "FAILED", problem: ref });
    if (this.#entries.size >= this.#maxKeys) {
      return Object.freeze({
        state: "failed",
        code: "FAILED",
        problem: `kms: ${uri}: not tracked, pullgate tracks at most ${this.#maxKeys} KMS keys`,
      });
    }
    const entry: Entry = { ref, state: PENDING, timer: undefined, inFlight: undefined, failures: 0 };
    this.#entries.set(uri, entry);
    if (this.#started && !this.#stopped.signal.aborted) void this.#refresh(uri, entry);
    return entry.state;
  }

  /** Stops tracking `uri` (its timer is cleared; a fetch under way is ignored when it ends). */
  untrack(uri: string): void {
    const entry = this.#entries.get(uri);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.#entries.delete(uri);
  }

  /** The state of a tracked reference; undefined when it is not tracked. */
  get(uri: string): KmsKeyState | undefined {
    return this.#entries.get(uri)?.state;
  }

  /** The tracked references. */
  uris(): string[] {
    return [...this.#entries.keys()];
  }

  /** Calls `listener(uri, state)` when a key's state or PEM changes; returns the unsubscribe. */
  onChange(listener: KmsKeyListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Fetches every tracked reference once; resolves when each has had its first attempt (bounded). */
  async start(): Promise<void> {
    if (this.#stopped.signal.aborted) return;
    this.#started = true;
    await Promise.all([...this.#entries].map(([uri, entry]) => this.#refresh(uri, entry)));
  }

  /** Fetches `uri` now (its timer is replaced); resolves when that fetch ended. */
  async refresh(uri: string): Promise<void> {
    const entry = this.#entries.get(uri);
    if (entry !== undefined && !this.#stopped.signal.aborted) await this.#refresh(uri, entry);
  }

  /** Clears every timer and abandons fetches under way; the keyring keeps answering get() as it was. */
  stop(): void {
    this.#stopped.abort();
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    for (const timer of this.#deadlines) clearTimeout(timer);
    this.#deadlines.clear();
    for (const wake of this.#waiting.splice(0)) wake();
  }

  #refresh(uri: string, entry: Entry): Promise<void> {
    if (entry.inFlight !== undefined) return entry.inFlight;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const run = async () => {
      const result = await this.#fetchBounded(entry.ref);
      if (this.#stopped.signal.aborted || this.#entries.get(uri) !== entry || result === undefined) return;
      this.#apply(uri, entry, result);
    };
    entry.inFlight = run().finally(() => {
      entry.inFlight = undefined;
    });
    return entry.inFlight;
  }

  /** One fetch in a slot, within the deadline; undefined when stopped before it ran. */
  async #fetchBounded(ref: KmsReference): Promise<KmsPublicKey | KmsError | undefined> {
    await this.#acquire();
    if (this.#stopped.signal.aborted) {
      this.#release();
      return undefined;
    }
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.#timeoutMs);
    timer.unref();
    this.#deadlines.add(timer);
    const signal = AbortSignal.any([deadline.signal, this.#stopped.signal]);
    const timedOut = () => new KmsError("TIMEOUT", ref.uri, `no answer within ${this.#timeoutMs} ms`);
    try {
      return await raceAbort(this.#fetch(ref, signal), signal, timedOut);
    } catch (err) {
      if (deadline.signal.aborted) return timedOut();
      return err instanceof KmsError
        ? err
        : new KmsError("FAILED", ref.uri, `failed (${errorTypeName(err)})`);
    } finally {
      clearTimeout(timer);
      this.#deadlines.delete(timer);
      this.#release();
    }
  }

  #apply(uri: string, entry: Entry, result: KmsPublicKey | KmsError): void {
    const before = entry.state;
    let changed: boolean;
    let delay: number;
    if (!(result instanceof KmsError)) {
      entry.failures = 0;
      entry.state = Object.freeze({
        state: "ready",
        pem: result.pem,
        fingerprint: result.fingerprint,
        signingAlgorithms: Object.freeze([...result.signingAlgorithms]),
        fetchedAt: this.#now(),
      });
      changed = before.state !== "ready" || before.pem !== result.pem;
      if (changed) {
        this.#logger?.log("info", "kms key fetched", {
          uri,
          fingerprint: result.fingerprint,
          ...(before.state === "ready" ? { previousFingerprint: before.fingerprint } : {}),
        });
      }
      delay = this.#refreshMs;
    } else {
      entry.failures += 1;
      delay = Math.min(
        this.#retryMaxMs,
        this.#refreshMs,
        this.#retryMinMs * 2 ** Math.min(entry.failures - 1, 30),
      );
      if (before.state === "ready" && !REVOKING_CODES.has(result.code)) {
        entry.state = Object.freeze({ ...before, refreshProblem: result.message });
        changed = false;
        this.#logger?.log("warn", "kms key refresh failed, keeping the last good key", {
          uri,
          code: result.code,
          problem: result.message,
          fingerprint: before.fingerprint,
          fetchedAt: new Date(before.fetchedAt).toISOString(),
          retryInMs: delay,
        });
      } else {
        entry.state = Object.freeze({ state: "failed", code: result.code, problem: result.message });
        changed = before.state !== "failed";
        this.#logger?.log(before.state === "ready" ? "error" : "warn", "kms key unavailable", {
          uri,
          code: result.code,
          problem: result.message,
          retryInMs: delay,
        });
      }
    }
    entry.timer = setTimeout(() => void this.#refresh(uri, entry), delay);
    entry.timer.unref();
    if (changed) this.#emit(uri, entry.state);
  }

  #emit(uri: string, state: KmsKeyState): void {
    for (const listener of this.#listeners) {
      try {
        listener(uri, state);
      } catch (err) {
        this.#logger?.log("error", "kms key listener failed", {
          uri,
          error: errorTypeName(err),
          cause: errorCause(err),
        });
      }
    }
  }

  async #acquire(): Promise<void> {
    while (this.#running >= this.#maxConcurrent && !this.#stopped.signal.aborted) {
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
    this.#running += 1;
  }

  #release(): void {
    this.#running -= 1;
    this.#waiting.shift()?.();
  }
}
