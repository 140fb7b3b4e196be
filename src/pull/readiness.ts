import type { RegistryClient } from "../upstream/index.ts";

export interface ReadinessResult {
  ok: boolean;
  /** The upstream asked (the default one, else the first). */
  upstream: string;
  reason?: string;
}

export interface ReadinessOptions {
  /** How long one check may take (default 2 s). */
  timeoutMs?: number;
  /** How long an answer is reused, so probes cannot hammer the upstream (default 1 s). */
  cacheMs?: number;
  now?: () => number;
}

/**
 * Readiness: is the default upstream answering /v2/ (200 or 401 both prove a registry is there)?
 * One check at a time, its answer reused for `cacheMs`.
 */
export class Readiness {
  readonly #client: RegistryClient | undefined;
  readonly #timeoutMs: number;
  readonly #cacheMs: number;
  readonly #now: () => number;
  #cached: { at: number; result: ReadinessResult } | undefined;
  #pending: Promise<ReadinessResult> | undefined;

  constructor(client: RegistryClient | undefined, opts: ReadinessOptions = {}) {
    this.#client = client;
    this.#timeoutMs = opts.timeoutMs ?? 2_000;
    this.#cacheMs = opts.cacheMs ?? 1_000;
    this.#now = opts.now ?? Date.now;
  }

  async check(): Promise<ReadinessResult> {
    const cached = this.#cached;
    if (cached && this.#now() - cached.at <= this.#cacheMs) return cached.result;
    this.#pending ??= this.#ping().finally(() => {
      this.#pending = undefined;
    });
    const result = await this.#pending;
    this.#cached = { at: this.#now(), result };
    return result;
  }

  async #ping(): Promise<ReadinessResult> {
    const client = this.#client;
    if (!client) return { ok: false, upstream: "", reason: "no upstream" };
    const upstream = client.config.name;
    try {
      const { status } = await client.ping({ signal: AbortSignal.timeout(this.#timeoutMs) });
      const ok = status === 200 || status === 401;
      return ok ? { ok, upstream } : { ok, upstream, reason: `upstream answered ${status}` };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return { ok: false, upstream, reason: typeof code === "string" ? code : "error" };
    }
  }
}
