import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import bcrypt from "bcryptjs";
import { type HtpasswdEntry, parseHtpasswd } from "../config/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { createConcurrencyLimit } from "./concurrency-limit.ts";

export interface HtpasswdVerifier {
  /**
   * The username when the password matches its bcrypt entry, else undefined. Throws QueueFullError
   * when too many checks are running and waiting already.
   */
  verify(username: string, password: string): Promise<string | undefined>;
}

export interface HtpasswdVerifierOptions {
  /** The file the entries came from: re-read (at most every `reloadIntervalMs`) when it changes. */
  path: string;
  entries: readonly HtpasswdEntry[];
  logger: Logger;
  /** bcrypt checks running at once (each takes milliseconds to hundreds of them, by design). */
  maxConcurrent?: number;
  /** bcrypt checks waiting for a slot; more are refused (429). */
  maxQueued?: number;
  /** Successful checks are remembered this long, so a pull's dozen requests cost one bcrypt. */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  reloadIntervalMs?: number;
  /** Tests: the bcrypt comparison. */
  compare?: (password: string, hash: string) => Promise<boolean>;
  now?: () => number;
}

interface Loaded {
  entries: ReadonlyArray<{ username: string; usernameHash: Buffer; hash: string }>;
  /** Of the entries: a file rewritten with the same users and hashes changes nothing. */
  fingerprint: string;
}

/**
 * htpasswd (bcrypt) checks that a flood of wrong passwords cannot turn into a stalled event loop:
 * bcryptjs's async compare yields between rounds, at most `maxConcurrent` run at once with a bounded
 * queue behind them, and successful checks are cached by an HMAC of user and password (never the
 * password itself) for `cacheTtlMs`. Unknown users cost the same bcrypt as known ones.
 */
export function createHtpasswdVerifier(opts: HtpasswdVerifierOptions): HtpasswdVerifier {
  const compare = opts.compare ?? ((password: string, hash: string) => bcrypt.compare(password, hash));
  const now = opts.now ?? Date.now;
  const ttlMs = opts.cacheTtlMs ?? 60_000;
  const maxEntries = opts.cacheMaxEntries ?? 10_000;
  const reloadIntervalMs = opts.reloadIntervalMs ?? 1_000;
  const limit = createConcurrencyLimit({
    maxConcurrent: opts.maxConcurrent ?? 2,
    maxQueued: opts.maxQueued ?? 64,
  });
  // Per process: cache keys are useless outside it.
  const cacheKey = randomBytes(32);
  const cache = new Map<string, { principal: string; expiresAt: number }>();
  let loaded = toLoaded(opts.entries);
  let lastCheck = now();
  let reloading: Promise<void> | undefined;
  // What the file looked like when last read (unknown at first: the config load read it), and the
  // last problem logged, so a broken or missing file is reported once, not every second.
  let stamp: string | undefined;
  let reported: string | undefined;
  const report = (key: string, fields: Record<string, unknown>) => {
    if (reported === key) return;
    reported = key;
    opts.logger.log("warn", "htpasswd not reloaded", { path: opts.path, ...fields });
  };

  const reloadIfChanged = async () => {
    let next: Loaded;
    try {
      const current = await stampOf(opts.path);
      if (current === stamp) return;
      const parsed = parseHtpasswd(await readFile(opts.path, "utf8"));
      stamp = current;
      if (parsed.problems.length > 0) {
        report(`problems:${current}`, { problems: parsed.problems });
        return;
      }
      next = toLoaded(parsed.entries);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      report(`error:${code}`, { code });
      return;
    }
    reported = undefined;
    if (next.fingerprint === loaded.fingerprint) return;
    loaded = next;
    // Removed users and changed passwords take effect now, not when the cache expires.
    cache.clear();
    opts.logger.log("info", "htpasswd reloaded", { path: opts.path, users: loaded.entries.length });
  };

  return {
    async verify(username, password) {
      const t = now();
      if (t - lastCheck >= reloadIntervalMs) {
        lastCheck = t;
        reloading ??= reloadIfChanged().finally(() => {
          reloading = undefined;
        });
      }
      if (reloading) await reloading;
      const key = createHmac("sha256", cacheKey)
        .update(`${Buffer.byteLength(username)}:${username}`)
        .update(password)
        .digest("base64");
      const hit = cache.get(key);
      if (hit && hit.expiresAt > now()) return hit.principal;
      if (hit) cache.delete(key);
      const { entries } = loaded;
      if (entries.length === 0) return undefined;
      // Look the user up without an early exit, and run a bcrypt for unknown users too.
      const wanted = sha256(username);
      let match: (typeof entries)[number] | undefined;
      for (const e of entries) if (timingSafeEqual(e.usernameHash, wanted) && !match) match = e;
      const target = match ?? (entries[0] as (typeof entries)[number]);
      const ok = await limit.run(() => compare(password, target.hash));
      if (!ok || !match) return undefined;
      if (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(key, { principal: match.username, expiresAt: now() + ttlMs });
      return match.username;
    },
  };
}

function toLoaded(entries: readonly HtpasswdEntry[]): Loaded {
  const list = entries.map((e) => ({
    username: e.username,
    usernameHash: sha256(e.username),
    hash: e.hash.reveal(),
  }));
  const fingerprint = createHash("sha256")
    .update(JSON.stringify(list.map((e) => [e.username, e.hash])))
    .digest("hex");
  return { entries: list, fingerprint };
}

async function stampOf(path: string): Promise<string> {
  const s = await stat(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
