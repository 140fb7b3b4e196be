import { readFile, stat } from "node:fs/promises";
import { Secret, type UpstreamCredentials, type UpstreamCredentialsConfig } from "../config/index.ts";
import { runCredentialHelper } from "./credential-helper.ts";
import { UpstreamError } from "./errors.ts";

/**
 * Where pullgate's login to one upstream comes from, asked whenever the auth layer needs it
 * (UpstreamAuth: a Basic header, a token fetch). A source answers from what it has until that may be
 * out of date, and looks again (re-reads the file, runs the helper) when it is, or when told that the
 * upstream refused what it gave.
 */
export interface CredentialSource {
  /** Where the login comes from, for messages: "passwordFile /run/secrets/hub/password". */
  readonly description: string;
  /**
   * The login to use now: the same object for as long as it has not changed (the auth layer drops the
   * tokens it got with an older one). Fails with an UpstreamError AUTH_FAILED that says why.
   */
  get(): Promise<UpstreamCredentials>;
  /**
   * The upstream refused `rejected` (default: whatever get() gives now): the next get() looks again,
   * once for them; callers that saw the same refusal share that look. A login that has moved on
   * since is not looked at again.
   */
  invalidate(rejected?: UpstreamCredentials): void;
}

export interface CredentialSourceOptions {
  /** The upstream's name, for errors. */
  upstream: string;
  /** The credential helper's environment (its PATH also finds it). Default: this process's. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** The source a configured login reads from. */
export function createCredentialSource(
  config: UpstreamCredentialsConfig,
  opts: CredentialSourceOptions,
): CredentialSource {
  switch (config.kind) {
    case "password":
      return fixedCredentials({ username: config.username, password: config.password });
    case "passwordFile":
      return new PasswordFileCredentials({
        upstream: opts.upstream,
        username: config.username,
        path: config.passwordFile,
        ...(opts.now ? { now: opts.now } : {}),
      });
    case "helper":
      return new HelperCredentials({
        upstream: opts.upstream,
        helper: config.helper,
        serverUrl: config.serverUrl,
        timeoutMs: config.timeoutMs,
        cacheSeconds: config.cacheSeconds,
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.now ? { now: opts.now } : {}),
      });
    default: {
      const never: never = config;
      return never;
    }
  }
}

/** A login fixed at load (`password`, `passwordEnv`): there is nothing to look at again. */
export function fixedCredentials(credentials: UpstreamCredentials): CredentialSource {
  return {
    description: "password",
    get: () => Promise.resolve(credentials),
    invalidate: () => {},
  };
}

/**
 * `passwordFile`, read when first needed and again when it changed: every get() at most once a second
 * `stat`s the path (following symlinks) and compares device, inode, size, mtime and ctime with the
 * last read. A rotated Kubernetes Secret is a new file behind a swapped `..data` symlink (a new inode),
 * an edit in place changes mtime/size: both are seen without a watcher (fs.watch misses renames of a
 * parent's symlink and is per platform). After invalidate() (an upstream 401) the file is read even
 * when it looks unchanged. Same content, same object: nothing is dropped for a touched file.
 */
export class PasswordFileCredentials implements CredentialSource {
  readonly description: string;
  readonly #opts: { upstream: string; username: string; path: string; checkIntervalMs: number };
  readonly #now: () => number;
  #current: { credentials: UpstreamCredentials; fileKey: string } | undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #stale = false;
  #pending: Promise<UpstreamCredentials> | undefined;
  /** Reads of the file (tests). */
  reads = 0;

  constructor(opts: {
    upstream: string;
    username: string;
    path: string;
    /** How often get() looks at the file at most. Default 1000. */
    checkIntervalMs?: number;
    now?: () => number;
  }) {
    this.#opts = { ...opts, checkIntervalMs: opts.checkIntervalMs ?? 1_000 };
    this.#now = opts.now ?? Date.now;
    this.description = `passwordFile ${opts.path}`;
  }

  get(): Promise<UpstreamCredentials> {
    if (this.#pending) return this.#pending;
    const current = this.#current;
    if (current && !this.#stale && this.#now() - this.#checkedAt < this.#opts.checkIntervalMs) {
      return Promise.resolve(current.credentials);
    }
    const pending = this.#check().finally(() => {
      this.#pending = undefined;
    });
    this.#pending = pending;
    return pending;
  }

  invalidate(rejected?: UpstreamCredentials): void {
    // A look under way is at least as fresh as one started now.
    if (this.#pending || !this.#current) return;
    if (rejected === undefined || rejected === this.#current.credentials) this.#stale = true;
  }

  async #check(): Promise<UpstreamCredentials> {
    const force = this.#stale;
    this.#stale = false;
    const { path, username } = this.#opts;
    let fileKey: string;
    try {
      const s = await stat(path);
      fileKey = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (err) {
      throw this.#error(`cannot read ${this.description} (${errCode(err)})`, err);
    }
    const current = this.#current;
    if (current && !force && current.fileKey === fileKey) {
      this.#checkedAt = this.#now();
      return current.credentials;
    }
    let password: string;
    try {
      this.reads++;
      password = (await readFile(path, "utf8")).trim();
    } catch (err) {
      throw this.#error(`cannot read ${this.description} (${errCode(err)})`, err);
    }
    if (password === "") throw this.#error(`${this.description} is empty`);
    this.#checkedAt = this.#now();
    if (current && current.credentials.password.reveal() === password) {
      current.fileKey = fileKey;
      return current.credentials;
    }
    this.#current = { credentials: { username, password: new Secret(password) }, fileKey };
    return this.#current.credentials;
  }

  #error(message: string, cause?: unknown): UpstreamError {
    // Until the file reads again, every get() looks (no old password from the interval's shortcut).
    this.#checkedAt = Number.NEGATIVE_INFINITY;
    return new UpstreamError("AUTH_FAILED", this.#opts.upstream, message, cause ? { cause } : {});
  }
}

/** A failed helper run is repeated to callers this long instead of running it again at once. */
export const HELPER_FAILURE_HOLD_MS = 5_000;
/** A 401 runs the helper again at most this often (an upstream refusing one repository is not a rotation). */
export const HELPER_RERUN_ON_REFUSAL_MS = 10_000;

export interface HelperCredentialsOptions {
  upstream: string;
  helper: string;
  serverUrl: string;
  timeoutMs: number;
  /** An answer is used this long, then the helper runs again. */
  cacheSeconds: number;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Default HELPER_RERUN_ON_REFUSAL_MS. */
  rerunOnRefusalMs?: number;
  /** Default HELPER_FAILURE_HOLD_MS. */
  failureHoldMs?: number;
}

/**
 * `credentials.helper`: `docker-credential-<helper> get`, run when first needed, again when its answer
 * is `cacheSeconds` old (helpers do not say when a login expires), and again after an upstream refused
 * it (invalidate(); at most once per `rerunOnRefusalMs`). Concurrent callers share one run. A failed
 * run is an AUTH_FAILED naming the helper, repeated for `failureHoldMs` rather than re-run per request.
 */
export class HelperCredentials implements CredentialSource {
  readonly description: string;
  readonly #opts: HelperCredentialsOptions;
  readonly #now: () => number;
  #current: { credentials: UpstreamCredentials; at: number } | undefined;
  #stale = false;
  #pending: Promise<UpstreamCredentials> | undefined;
  #failure: { error: UpstreamError; at: number } | undefined;
  #lastRefusalRun = Number.NEGATIVE_INFINITY;
  /** Helper runs started (tests). */
  runs = 0;

  constructor(opts: HelperCredentialsOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.description = `credential helper docker-credential-${opts.helper}`;
  }

  get(): Promise<UpstreamCredentials> {
    if (this.#pending) return this.#pending;
    const now = this.#now();
    const current = this.#current;
    if (current && !this.#stale && now - current.at < this.#opts.cacheSeconds * 1000) {
      return Promise.resolve(current.credentials);
    }
    const failure = this.#failure;
    if (failure && !this.#stale && now - failure.at < (this.#opts.failureHoldMs ?? HELPER_FAILURE_HOLD_MS)) {
      return Promise.reject(failure.error);
    }
    const pending = this.#run().finally(() => {
      this.#pending = undefined;
    });
    this.#pending = pending;
    return pending;
  }

  invalidate(rejected?: UpstreamCredentials): void {
    if (this.#pending || !this.#current) return;
    if (rejected !== undefined && rejected !== this.#current.credentials) return;
    if (this.#now() - this.#lastRefusalRun < (this.#opts.rerunOnRefusalMs ?? HELPER_RERUN_ON_REFUSAL_MS))
      return;
    this.#stale = true;
  }

  async #run(): Promise<UpstreamCredentials> {
    const started = this.#now();
    if (this.#stale) this.#lastRefusalRun = started;
    this.#stale = false;
    this.runs++;
    const { helper, serverUrl, timeoutMs, env, upstream } = this.#opts;
    let answer: UpstreamCredentials;
    try {
      answer = await runCredentialHelper({ helper, serverUrl, timeoutMs, ...(env ? { env } : {}) });
    } catch (err) {
      const error = new UpstreamError("AUTH_FAILED", upstream, (err as Error).message, { cause: err });
      this.#failure = { error, at: this.#now() };
      throw error;
    }
    this.#failure = undefined;
    const current = this.#current;
    if (
      current &&
      current.credentials.username === answer.username &&
      current.credentials.password.reveal() === answer.password.reveal()
    ) {
      current.at = started;
      return current.credentials;
    }
    this.#current = { credentials: answer, at: started };
    return answer;
  }
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : "error";
}
