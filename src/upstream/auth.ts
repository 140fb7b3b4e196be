import type { Dispatcher } from "undici";
import { BoundedLru, stringBytes } from "../cache/index.ts";
import type { UpstreamCredentials } from "../config/index.ts";
import { parseChallenges } from "./challenge.ts";
import { toUpstreamError, UpstreamError } from "./errors.ts";
import { readBounded } from "./read-body.ts";

const MAX_TOKEN_RESPONSE = 256 * 1024;
/** distribution's token spec: tokens without expires_in last 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;
/** A header longer than this (a token service may answer up to 256 KiB) is used once, never cached. */
const MAX_CACHED_HEADER_CHARS = 64 * 1024;
/** The Map slot and entry objects: a rough, fixed cost per cached scope. */
const ENTRY_OVERHEAD_BYTES = 128;

export interface UpstreamAuthOptions {
  upstream: string;
  origin: string;
  credentials: UpstreamCredentials | undefined;
  /** Origins (besides `origin`) whose token realms may be fetched; any other realm is refused. */
  tokenRealms?: readonly string[];
  dispatcher: Dispatcher;
  userAgent: string;
  timeoutMs: number;
  now?: () => number;
  /** Scopes whose header is cached (one per repository pulled). Default 10 000. */
  tokenCacheMaxEntries?: number;
  /** Bytes of cached headers and scopes. Default 16 MiB. */
  tokenCacheMaxBytes?: number;
}

/**
 * pullgate's own credentials for one upstream: answers Bearer challenges with tokens cached per
 * scope until they expire, or Basic challenges with the configured username/password. Concurrent
 * requests for the same scope share one token fetch.
 *
 * Scopes are named after repositories, which clients can invent: the cache is a BoundedLru (entries
 * and bytes), so a stream of invented names evicts old tokens instead of growing the process. The
 * in-flight map holds one entry per fetch under way and drops it when the fetch settles.
 */
export class UpstreamAuth {
  readonly #opts: UpstreamAuthOptions;
  readonly #now: () => number;
  readonly #cache: BoundedLru<string>;
  readonly #inflight = new Map<string, Promise<string>>();
  /** Counts token-service round trips (tests and metrics). */
  tokenFetches = 0;

  constructor(opts: UpstreamAuthOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#cache = new BoundedLru<string>({
      maxEntries: opts.tokenCacheMaxEntries ?? 10_000,
      maxBytes: opts.tokenCacheMaxBytes ?? 16 * 1024 * 1024,
      sizeOf: (header, scope) => ENTRY_OVERHEAD_BYTES + stringBytes(scope) + stringBytes(header),
      now: this.#now,
    });
  }

  /** What the token cache holds (tests and metrics). */
  cacheUsage(): { entries: number; bytes: number; maxEntries: number; maxBytes: number } {
    const c = this.#cache;
    return { entries: c.size, bytes: c.bytes, maxEntries: c.maxEntries, maxBytes: c.maxBytes };
  }

  /** Number of token fetches under way (each is dropped when it settles). */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** The Authorization header to send for `scope`, when one is cached and still valid. */
  cached(scope: string): string | undefined {
    return this.#cache.get(scope);
  }

  invalidate(scope: string): void {
    this.#cache.delete(scope);
  }

  /**
   * Answers a 401's challenge. Returns the Authorization header to retry with, or undefined when
   * the challenge cannot be answered (e.g. Basic without configured credentials).
   */
  async answer(
    challengeHeader: string | undefined,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(challengeHeader);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer?.params.realm) {
      const key = scope;
      let pending = this.#inflight.get(key);
      if (!pending) {
        pending = this.#fetchToken(bearer.params.realm, bearer.params.service, scope, signal).finally(() =>
          this.#inflight.delete(key),
        );
        this.#inflight.set(key, pending);
      }
      return pending;
    }
    if (challenges.some((c) => c.scheme === "basic") && this.#opts.credentials) {
      const header = basicHeader(this.#opts.credentials);
      this.#remember(scope, header, Number.POSITIVE_INFINITY);
      return header;
    }
    return undefined;
  }

  async #fetchToken(
    realm: string,
    service: string | undefined,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const { upstream, origin, credentials, dispatcher, userAgent, timeoutMs } = this.#opts;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UpstreamError("AUTH_FAILED", upstream, "upstream named an invalid token realm");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UpstreamError("AUTH_FAILED", upstream, "upstream named a non-HTTP token realm");
    }
    // A realm is a URL the upstream chose: fetching any origin it names (with pullgate's credentials)
    // would be SSRF and a credential leak. Only the upstream's own origin and configured realms.
    if (url.origin !== origin && !(this.#opts.tokenRealms ?? []).includes(url.origin)) {
      throw new UpstreamError(
        "AUTH_FAILED",
        upstream,
        `the token realm ${url.origin} is not the upstream's origin; add it to upstreams[].tokenRealms to use it`,
      );
    }
    // Never send credentials in clear text to a realm when the registry itself is HTTPS.
    if (credentials && url.protocol === "http:" && origin.startsWith("https:")) {
      throw new UpstreamError(
        "AUTH_FAILED",
        upstream,
        "refusing to send credentials to a plain-HTTP token realm",
      );
    }
    if (service) url.searchParams.set("service", service);
    if (scope) url.searchParams.set("scope", scope);
    const headers: Record<string, string> = { "user-agent": userAgent, accept: "application/json" };
    if (credentials) headers.authorization = basicHeader(credentials);
    this.tokenFetches++;
    const res = await dispatcher
      .request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: "GET",
        headers,
        signal: signal ?? null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      .catch((err: unknown) => {
        throw toUpstreamError(err, upstream, signal);
      });
    let body: Buffer;
    try {
      body = await readBounded(res.body, MAX_TOKEN_RESPONSE);
    } catch (err) {
      throw new UpstreamError("AUTH_FAILED", upstream, "token service response too large", { cause: err });
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new UpstreamError("AUTH_FAILED", upstream, "token service refused the credentials", {
        status: res.statusCode,
      });
    }
    if (res.statusCode !== 200) {
      throw new UpstreamError("AUTH_FAILED", upstream, `token service answered ${res.statusCode}`, {
        status: res.statusCode,
      });
    }
    let token: string | undefined;
    let expiresIn = DEFAULT_TOKEN_SECONDS;
    try {
      const json = JSON.parse(body.toString("utf8")) as {
        token?: unknown;
        access_token?: unknown;
        expires_in?: unknown;
      };
      const t = typeof json.token === "string" && json.token ? json.token : json.access_token;
      if (typeof t === "string" && t.length > 0) token = t;
      if (typeof json.expires_in === "number" && json.expires_in > 0) expiresIn = json.expires_in;
    } catch {
      // fall through: no token
    }
    if (!token) throw new UpstreamError("AUTH_FAILED", upstream, "token service returned no token");
    const header = `Bearer ${token}`;
    // Renew a little early so a token never expires on the wire.
    const marginMs = Math.min(10_000, (expiresIn * 1000) / 5);
    this.#remember(scope, header, this.#now() + expiresIn * 1000 - marginMs);
    return header;
  }

  #remember(scope: string, header: string, expiresAt: number): void {
    if (header.length > MAX_CACHED_HEADER_CHARS) {
      this.#cache.delete(scope);
      return;
    }
    this.#cache.set(scope, header, expiresAt);
  }
}

function basicHeader(c: UpstreamCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password.reveal()}`).toString("base64")}`;
}
