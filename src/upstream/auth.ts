import type { Dispatcher } from "undici";
import { BoundedLru, stringBytes } from "../cache/index.ts";
import type { UpstreamCredentials } from "../config/index.ts";
import { parseChallenges } from "./challenge.ts";
import type { CredentialSource } from "./credential-source.ts";
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
  /** pullgate's login, asked whenever one is needed (a fixed one, a password file, a credential helper). */
  credentials: CredentialSource | undefined;
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
 * scope until they expire, or Basic challenges with the configured login. Concurrent requests for the
 * same scope share one token fetch.
 *
 * The login comes from a CredentialSource, asked when one is needed: a Basic header is made from what
 * it gives on every request (an upstream that asked for Basic gets it at once), a token fetch sends
 * it. When it gives a different login (a password file changed, a helper answered anew), the tokens
 * obtained with the old one are dropped. A login the upstream refuses (the Basic header a 401 answered,
 * a token service's 401/403) is reported to the source, which looks again once; a new login is tried
 * once, the same one is not sent again.
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
  /** The login the cached tokens were obtained with (the last one the source gave). */
  #credentials: UpstreamCredentials | undefined;
  /** Bumped with every new login: a token fetched with an older one is used once, never cached. */
  #generation = 0;
  /** The upstream answered with a Basic challenge: send Basic without waiting for the next 401. */
  #basic = false;
  /** Counts token-service round trips (tests and metrics). */
  tokenFetches = 0;
  /** Counts logins replaced by a different one (tests). */
  credentialChanges = 0;

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

  /** The token header cached for `scope`, when one is cached and still valid. */
  cached(scope: string): string | undefined {
    return this.#cache.get(scope);
  }

  /**
   * The Authorization header to send for `scope` before any challenge: a cached token, or Basic with
   * the current login for an upstream that asked for Basic; undefined otherwise. Fails (AUTH_FAILED)
   * when the login cannot be had, e.g. a credential helper that fails.
   */
  async authorization(scope: string, signal?: AbortSignal): Promise<string | undefined> {
    const cached = this.#cache.get(scope);
    if (cached !== undefined) return cached;
    if (!this.#basic || !this.#opts.credentials) return undefined;
    return basicHeader(await this.#currentCredentials(signal));
  }

  invalidate(scope: string): void {
    this.#cache.delete(scope);
  }

  /**
   * Answers a 401's challenge. Returns the Authorization header to retry with, or undefined when
   * the challenge cannot be answered (e.g. Basic without configured credentials) or only with what
   * `rejected` (the header the 401 answered) already sent.
   */
  async answer(
    challengeHeader: string | undefined,
    scope: string,
    signal?: AbortSignal,
    rejected?: string,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(challengeHeader);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer?.params.realm) {
      this.#basic = false;
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
    const source = this.#opts.credentials;
    if (challenges.some((c) => c.scheme === "basic") && source) {
      this.#basic = true;
      const credentials = await this.#currentCredentials(signal);
      const header = basicHeader(credentials);
      if (rejected === undefined || rejected !== header) return header;
      // The upstream refused this login: the source looks again once (a re-read file, a helper run).
      source.invalidate(credentials);
      const again = basicHeader(await this.#currentCredentials(signal));
      return again === rejected ? undefined : again;
    }
    return undefined;
  }

  /** The source's current login; a different one than before drops the tokens obtained with the old one. */
  async #currentCredentials(signal?: AbortSignal): Promise<UpstreamCredentials> {
    const source = this.#opts.credentials;
    if (!source) throw new UpstreamError("AUTH_FAILED", this.#opts.upstream, "no credentials configured");
    let credentials: UpstreamCredentials;
    try {
      credentials = await untilAborted(source.get(), signal);
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      throw toUpstreamError(err, this.#opts.upstream, signal);
    }
    if (credentials !== this.#credentials) {
      if (this.#credentials !== undefined) {
        this.#cache.clear();
        this.credentialChanges++;
      }
      this.#credentials = credentials;
      this.#generation++;
    }
    return credentials;
  }

  async #fetchToken(
    realm: string,
    service: string | undefined,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const { upstream, origin } = this.#opts;
    const source = this.#opts.credentials;
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
    if (source && url.protocol === "http:" && origin.startsWith("https:")) {
      throw new UpstreamError(
        "AUTH_FAILED",
        upstream,
        "refusing to send credentials to a plain-HTTP token realm",
      );
    }
    if (service) url.searchParams.set("service", service);
    if (scope) url.searchParams.set("scope", scope);
    let credentials = source ? await this.#currentCredentials(signal) : undefined;
    for (let attempt = 0; ; attempt++) {
      const generation = this.#generation;
      const res = await this.#requestToken(url, credentials, signal);
      if ((res.status === 401 || res.status === 403) && source && credentials && attempt === 0) {
        // The token service refused this login: the source looks again once; a new one is tried once.
        source.invalidate(credentials);
        const again = await this.#currentCredentials(signal);
        if (again !== credentials) {
          credentials = again;
          continue;
        }
      }
      return this.#readToken(res, scope, generation);
    }
  }

  async #requestToken(
    url: URL,
    credentials: UpstreamCredentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; body: Buffer }> {
    const { upstream, dispatcher, userAgent, timeoutMs } = this.#opts;
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
    try {
      return { status: res.statusCode, body: await readBounded(res.body, MAX_TOKEN_RESPONSE) };
    } catch (err) {
      throw new UpstreamError("AUTH_FAILED", upstream, "token service response too large", { cause: err });
    }
  }

  /** The token service's answer as the header to send; cached unless a newer login came meanwhile. */
  #readToken(res: { status: number; body: Buffer }, scope: string, generation: number): string {
    const { upstream } = this.#opts;
    if (res.status === 401 || res.status === 403) {
      throw new UpstreamError("AUTH_FAILED", upstream, "token service refused the credentials", {
        status: res.status,
      });
    }
    if (res.status !== 200) {
      throw new UpstreamError("AUTH_FAILED", upstream, `token service answered ${res.status}`, {
        status: res.status,
      });
    }
    let token: string | undefined;
    let expiresIn = DEFAULT_TOKEN_SECONDS;
    try {
      const json = JSON.parse(res.body.toString("utf8")) as {
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
    if (generation === this.#generation)
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

/** `promise`, or a rejection as soon as `signal` aborts (the shared work behind it goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
