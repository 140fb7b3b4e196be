import type { Dispatcher } from "undici";
import type { UpstreamCredentials } from "../config/index.ts";
import { parseChallenges } from "./challenge.ts";
import { toUpstreamError, UpstreamError } from "./errors.ts";
import { readBounded } from "./read-body.ts";

const MAX_TOKEN_RESPONSE = 256 * 1024;
/** distribution's token spec: tokens without expires_in last 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;

interface CachedAuth {
  header: string;
  expiresAt: number;
}

export interface UpstreamAuthOptions {
  upstream: string;
  origin: string;
  credentials: UpstreamCredentials | undefined;
  dispatcher: Dispatcher;
  userAgent: string;
  timeoutMs: number;
  now?: () => number;
}

/**
 * pullgate's own credentials for one upstream: answers Bearer challenges with tokens cached per
 * scope until they expire, or Basic challenges with the configured username/password. Concurrent
 * requests for the same scope share one token fetch.
 */
export class UpstreamAuth {
  readonly #opts: UpstreamAuthOptions;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedAuth>();
  readonly #inflight = new Map<string, Promise<string>>();
  /** Counts token-service round trips (tests and metrics). */
  tokenFetches = 0;

  constructor(opts: UpstreamAuthOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** The Authorization header to send for `scope`, when one is cached and still valid. */
  cached(scope: string): string | undefined {
    const hit = this.#cache.get(scope);
    if (!hit) return undefined;
    if (hit.expiresAt <= this.#now()) {
      this.#cache.delete(scope);
      return undefined;
    }
    return hit.header;
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
      this.#cache.set(scope, { header, expiresAt: Number.POSITIVE_INFINITY });
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
    this.#cache.set(scope, { header, expiresAt: this.#now() + expiresIn * 1000 - marginMs });
    return header;
  }
}

function basicHeader(c: UpstreamCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password.reveal()}`).toString("base64")}`;
}
