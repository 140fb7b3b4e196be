import { createHash } from "node:crypto";
import type { Config, LookupErrorAction, ProjectConfig, ProjectMode } from "../config/index.ts";
import { OciError } from "../oci/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { type PolicyOverride, parsePolicyOverride } from "./policy-override.ts";
import type { PolicyStore } from "./policy-store.ts";
import { projectOf } from "./project.ts";
import { compileRepositoryGlob, matchesAnyGlob } from "./repository-glob.ts";

export interface PolicyKey {
  name: string;
  pem: string;
  /** "sha256:<hex>" of the key's DER SubjectPublicKeyInfo. */
  fingerprint: string;
}

/** The policy a request is judged under: file config (or defaults) with the runtime override applied. */
export interface EffectivePolicy {
  project: string;
  mode: ProjectMode;
  keys: readonly PolicyKey[];
  exempt: readonly string[];
  signatureRepository: string | undefined;
  onLookupError: LookupErrorAction;
  gateHead: boolean;
  strictBlobs: boolean;
  /** A signature counts only if it names the repository pulled. */
  matchRepository: boolean;
  /** Upstream names this policy applies to (["*"]: all); elsewhere the project gets `defaults`. */
  upstreams: readonly string[];
  /** Where the policy came from: a `projects.<name>` entry, `defaults`, or a runtime change on top. */
  source: "config" | "defaults" | "runtime";
  /** Changes whenever anything above that can change a verdict changes; part of every cache key. */
  fingerprint: string;
  isExempt(repository: string): boolean;
}

/** Returns a key's fingerprint; throws (with a message fit for an admin) when the key is not acceptable. */
export type KeyFingerprinter = (key: { name: string; pem: string }) => string;

export interface PolicyRegistryDeps {
  store: PolicyStore;
  fingerprintKey: KeyFingerprinter;
  logger: Logger;
}

/** A policy change that does not validate: 400 POLICY_INVALID, the problems in the detail. */
export class PolicyValidationError extends OciError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super("POLICY_INVALID", `invalid policy: ${problems.join("; ")}`, { detail: { problems } });
    this.problems = problems;
  }
}

/**
 * Every project's effective policy, kept in memory for the hot path and rebuilt when the policy store
 * reports a change (from this replica or another one sharing the Redis).
 */
export class PolicyRegistry {
  readonly #config: Config;
  readonly #deps: PolicyRegistryDeps;
  #overrides: Record<string, PolicyOverride> = {};
  readonly #cache = new Map<string, EffectivePolicy>();
  #unsubscribe: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: Config, deps: PolicyRegistryDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /** Checks every configured key (startup problems, as config paths) and loads the stored overrides. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#deps.store.subscribe(() => {
      this.reload().catch((err: unknown) => {
        this.#deps.logger.log("warn", "policy reload failed", {
          code: (err as { code?: string }).code ?? "error",
        });
      });
    });
    await this.reload().catch((err: unknown) => {
      // Without the store (Redis down at startup) the file config applies; the subscription reloads later.
      this.#deps.logger.log("warn", "policy overrides unavailable, using the config file", {
        code: (err as { code?: string }).code ?? "error",
      });
    });
  }

  /** Problems with the configured keys, as config paths (reported at startup, exit 2). */
  checkConfiguredKeys(): string[] {
    return configuredKeyProblems(this.#config, this.#deps.fingerprintKey);
  }

  async reload(): Promise<void> {
    const stored = await this.#deps.store.load();
    const next: Record<string, PolicyOverride> = {};
    for (const [project, value] of Object.entries(stored)) {
      const parsed = parsePolicyOverride(value);
      if (parsed.ok) next[project] = parsed.value;
      else
        this.#deps.logger.log("warn", "ignoring an invalid stored policy", {
          project,
          problems: parsed.problems,
        });
    }
    this.#overrides = next;
    this.#cache.clear();
  }

  /**
   * The policy a repository pulled from `upstream` is judged under: its project's, when that policy
   * reaches this upstream, else `defaults` (a project name means nothing across registries).
   */
  forRepository(repository: string, upstream?: string): EffectivePolicy {
    const project = projectOf(repository);
    const policy = this.forProject(project);
    if (upstream === undefined || reaches(policy.upstreams, upstream)) return policy;
    const key = `\u0000defaults\u0000${project}`;
    let p = this.#cache.get(key);
    if (!p) {
      p = this.#build(project, undefined, true);
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(key, p);
    }
    return p;
  }

  forProject(project: string): EffectivePolicy {
    let p = this.#cache.get(project);
    if (!p) {
      p = this.#build(project, ownValue(this.#overrides, project));
      // Bounded: projects outside the config and the overrides all share `defaults`, cached per name.
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(project, p);
    }
    return p;
  }

  /** Configured projects plus projects that only exist as runtime overrides. */
  list(): EffectivePolicy[] {
    const names = new Set([...Object.keys(this.#config.projects), ...Object.keys(this.#overrides)]);
    return [...names].sort().map((n) => this.forProject(n));
  }

  override(project: string): PolicyOverride | undefined {
    return this.#overrides[project];
  }

  /**
   * Validates `patch`, merges it into the project's runtime override, stores it (reaching every
   * replica) and returns the policy before and after. Throws PolicyValidationError for a bad patch,
   * or the store's error when it cannot persist (Redis down).
   */
  async update(
    project: string,
    patch: unknown,
  ): Promise<{ before: EffectivePolicy; after: EffectivePolicy }> {
    const parsed = parsePolicyOverride(patch);
    if (!parsed.ok) throw new PolicyValidationError(parsed.problems);
    // Serialized: two partial updates in flight must both apply, not the last overwrite the first.
    return this.#serialize(async () => {
      const merged: PolicyOverride = { ...ownValue(this.#overrides, project), ...parsed.value };
      this.#checkReach(project, merged);
      const before = this.forProject(project);
      const after = this.#build(project, merged); // validates keys before anything is stored
      await this.#deps.store.put(project, merged);
      this.#overrides = { ...this.#overrides, [project]: merged };
      this.#cache.set(project, after);
      return { before, after };
    });
  }

  /** Drops the runtime override: the project is back on its file config (or defaults). */
  async reset(project: string): Promise<{ before: EffectivePolicy; after: EffectivePolicy }> {
    return this.#serialize(async () => {
      const before = this.forProject(project);
      await this.#deps.store.remove(project);
      const { [project]: _dropped, ...rest } = this.#overrides;
      this.#overrides = rest;
      this.#cache.delete(project);
      return { before, after: this.forProject(project) };
    });
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
  }

  /** An override must say where it applies when the file does not and several upstreams exist. */
  #checkReach(project: string, override: PolicyOverride): void {
    const names = new Set(this.#config.upstreams.map((u) => u.name));
    const problems: string[] = [];
    for (const n of override.upstreams ?? []) {
      if (n !== "*" && !names.has(n)) problems.push(`upstreams: no upstream is called ${JSON.stringify(n)}`);
    }
    if (override.upstreams?.includes("*") && override.upstreams.length > 1)
      problems.push('upstreams: "*" stands alone');
    const base = ownValue(this.#config.projects, project);
    if (!override.upstreams && !base && names.size > 1) {
      problems.push('upstreams: required when several upstreams are configured (or ["*"] for all)');
    }
    if (problems.length > 0) throw new PolicyValidationError(problems);
  }

  #build(project: string, override: PolicyOverride | undefined, defaultsOnly = false): EffectivePolicy {
    const base = defaultsOnly ? undefined : ownValue(this.#config.projects, project);
    const cfg = base ?? this.#config.defaults;
    const keysIn = override?.keys ?? cfg.keys;
    const problems: string[] = [];
    const keys: PolicyKey[] = [];
    for (const k of keysIn) {
      try {
        keys.push({ name: k.name, pem: k.pem, fingerprint: this.#deps.fingerprintKey(k) });
      } catch (err) {
        problems.push(`keys: ${k.name}: ${(err as Error).message}`);
      }
    }
    // A stored override whose key became unacceptable must not silently drop the key: refuse to build.
    if (problems.length > 0) throw new PolicyValidationError(problems);
    const signatureRepository =
      override?.signatureRepository === null
        ? undefined
        : (override?.signatureRepository ?? cfg.signatureRepository);
    const fields = {
      project,
      mode: override?.mode ?? cfg.mode,
      keys,
      exempt: override?.exempt ?? cfg.exempt,
      signatureRepository,
      onLookupError: override?.onLookupError ?? cfg.onLookupError,
      gateHead: override?.gateHead ?? cfg.gateHead,
      strictBlobs: override?.strictBlobs ?? cfg.strictBlobs,
      matchRepository: override?.matchRepository ?? cfg.matchRepository,
      // An override stored before reach existed applies where its project's file entry does (or everywhere).
      upstreams: override?.upstreams ?? cfg.upstreams,
    };
    const globs = fields.exempt.map(compileRepositoryGlob);
    return {
      ...fields,
      source: override ? "runtime" : base ? "config" : "defaults",
      fingerprint: fingerprintOf(fields),
      isExempt: (repository) => matchesAnyGlob(globs, repository),
    };
  }
}

function reaches(upstreams: readonly string[], upstream: string): boolean {
  return upstreams.includes("*") || upstreams.includes(upstream);
}

/** `record[key]` only when it is the record's own entry ("constructor" is not a project of every config). */
function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Every key in the config file through `fingerprintKey`'s acceptance rules, as config paths. */
export function configuredKeyProblems(config: Config, fingerprintKey: KeyFingerprinter): string[] {
  const problems: string[] = [];
  const check = (keys: ProjectConfig["keys"], path: string) =>
    keys.forEach((k, i) => {
      try {
        fingerprintKey(k);
      } catch (err) {
        problems.push(`${path}[${i}]: ${(err as Error).message}`);
      }
    });
  check(config.defaults.keys, "defaults.keys");
  for (const [name, p] of Object.entries(config.projects)) check(p.keys, `projects.${name}.keys`);
  return problems;
}

function fingerprintOf(p: Omit<EffectivePolicy, "fingerprint" | "source" | "isExempt">): string {
  const canonical = JSON.stringify({
    v: 1,
    project: p.project,
    mode: p.mode,
    keys: p.keys.map((k) => k.fingerprint).sort(),
    exempt: [...p.exempt].sort(),
    signatureRepository: p.signatureRepository ?? null,
    onLookupError: p.onLookupError,
    strictBlobs: p.strictBlobs,
    matchRepository: p.matchRepository,
    upstreams: [...p.upstreams].sort(),
  });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 32);
}

/** The JSON view of a policy for the admin API: keys by name and fingerprint only. */
export function toPolicyView(p: EffectivePolicy): Record<string, unknown> {
  return {
    project: p.project,
    mode: p.mode,
    keys: p.keys.map((k) => ({ name: k.name, fingerprint: k.fingerprint })),
    exempt: p.exempt,
    signatureRepository: p.signatureRepository ?? null,
    onLookupError: p.onLookupError,
    gateHead: p.gateHead,
    strictBlobs: p.strictBlobs,
    matchRepository: p.matchRepository,
    upstreams: p.upstreams,
    source: p.source,
    fingerprint: p.fingerprint,
  };
}
