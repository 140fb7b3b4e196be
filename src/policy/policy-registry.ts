import { OciError } from "../oci/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import { type Authority, parseTrustedKey, type Requirements, type TrustRoot } from "../verify/index.ts";
import { policyFingerprint } from "./policy-fingerprint.ts";
import { parsePolicyOverride } from "./policy-override.ts";
import type { PolicyStore } from "./policy-store.ts";
import { projectOf } from "./project.ts";
import {
  applyOptions,
  crossOptionProblems,
  type PolicyKey,
  type PolicyOverride,
  PROJECT_OPTION_NAMES,
  type ProjectOptions,
  policyAuthorities,
  policyRequirements,
  reachProblems,
} from "./project-options.ts";
import { compileRepositoryGlob, matchesAnyGlob } from "./repository-glob.ts";

/**
 * The policy a request is judged under: file config (or defaults) with the runtime override applied.
 * Its keys are parsed (verify/), once, when it is built.
 */
export interface EffectivePolicy extends ProjectOptions {
  project: string;
  /** Where the policy came from: a `projects.<name>` entry, `defaults`, or a runtime change on top. */
  source: "config" | "defaults" | "runtime";
  /** Changes whenever anything above that can change a verdict changes; part of every cache key. */
  fingerprint: string;
  isExempt(repository: string): boolean;
  /** Its keys (with key material) and keyless identities, as verify/ takes them. */
  authorities: readonly Authority[];
  /** Threshold, required signers, annotations and attestations, as verify/ takes them. */
  requirements: Requirements;
  /**
   * Keys that cannot be used now (a KMS key not fetched yet, or failing): "name (reference): why".
   * While any is listed, no decision is made under this policy: pulls get 503 SIGNATURE_UNAVAILABLE.
   */
  unavailableKeys: readonly string[];
}

/** What the KMS keyring holds for a reference (kms/ fetches; the registry only reads). */
export type KmsKeyState =
  | { state: "ready"; pem: string }
  | { state: "pending" }
  | { state: "failed"; problem: string };

/** The configured policies (the config file, resolved): what runtime overrides apply on top of. */
export interface ConfiguredPolicies {
  /** Trusted roots by name, for keys and identities set through the admin API. */
  trustedRoots: ReadonlyMap<string, TrustRoot>;
  /** Why a KMS reference is not usable (the admin API's keys are checked with it); undefined: any is. */
  kmsProblem?: ((reference: string) => string | undefined) | undefined;
  projects: Readonly<Record<string, ProjectOptions>>;
  /** The policy of every project not listed in `projects`. */
  defaults: ProjectOptions;
  upstreams: readonly { name: string }[];
}

export interface PolicyRegistryDeps {
  store: PolicyStore;
  logger: Logger;
  /** The KMS keys' current material, by reference; without it every KMS key is unavailable. */
  kmsKey?: ((reference: string) => KmsKeyState) | undefined;
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
  readonly #config: ConfiguredPolicies;
  readonly #deps: PolicyRegistryDeps;
  #overrides: Record<string, PolicyOverride> = {};
  /** The store's content as last loaded (JSON), to tell a reload that changes nothing. */
  #loaded: string | undefined;
  readonly #cache = new Map<string, EffectivePolicy>();
  #unsubscribe: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: ConfiguredPolicies, deps: PolicyRegistryDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /** Subscribes to the store's changes and loads the stored overrides. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#deps.store.subscribe(() => {
      this.reload().catch((err: unknown) => {
        this.#deps.logger.log("warn", "policy reload failed", {
          code: (err as { code?: string }).code ?? "error",
          cause: errorCause(err),
        });
      });
    });
    await this.reload().catch((err: unknown) => {
      // Without the store (Redis down at startup) the file config applies; the subscription reloads later.
      this.#deps.logger.log("warn", "policy overrides unavailable, using the config file", {
        code: (err as { code?: string }).code ?? "error",
        cause: errorCause(err),
      });
    });
  }

  async reload(): Promise<void> {
    const stored = await this.#deps.store.load();
    // The periodic reconcile reads an unchanged store most of the time: the built policies stay.
    const text = JSON.stringify(Object.entries(stored).sort(([a], [b]) => (a < b ? -1 : 1)));
    if (text === this.#loaded) return;
    this.#loaded = text;
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

  /**
   * Rebuilds every effective policy on next use (a trusted root's content changed: fingerprints that
   * cover it change, so verdicts made under the old root become unreachable).
   */
  invalidate(): void {
    this.#cache.clear();
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
  }

  /** An override must say where it applies when the file does not and several upstreams exist. */
  #checkReach(project: string, override: PolicyOverride): void {
    const names = this.#config.upstreams.map((u) => u.name);
    const configured = ownValue(this.#config.projects, project) !== undefined;
    // An override stored before reach existed applies where its project's file entry does (or everywhere).
    if (override.upstreams === undefined && configured) return;
    const problems = reachProblems(override.upstreams, "upstreams", names);
    if (problems.length > 0) throw new PolicyValidationError(problems);
  }

  #build(project: string, override: PolicyOverride | undefined, defaultsOnly = false): EffectivePolicy {
    const base = defaultsOnly ? undefined : ownValue(this.#config.projects, project);
    const problems: string[] = [];
    const applied = applyOptions(base ?? this.#config.defaults, override, "", problems, {
      roots: this.#config.trustedRoots,
      kmsProblem: this.#config.kmsProblem,
    });
    problems.push(...crossOptionProblems(applied, ""));
    // A stored override whose key became unacceptable must not silently drop the key: refuse to build.
    if (problems.length > 0) throw new PolicyValidationError(problems);
    const unavailableKeys: string[] = [];
    const keys = applied.keys.map((k) => (k.kms === undefined ? k : this.#kmsKey(k, unavailableKeys)));
    const options: ProjectOptions = { ...applied, keys };
    const globs = options.exempt.map(compileRepositoryGlob);
    return {
      ...options,
      project,
      source: override ? "runtime" : base ? "config" : "defaults",
      fingerprint: policyFingerprint(project, options),
      isExempt: (repository) => matchesAnyGlob(globs, repository),
      authorities: policyAuthorities(options),
      requirements: policyRequirements(options),
      unavailableKeys,
    };
  }

  /** A KMS key with the material the keyring holds now, or without it (and why, in `unavailable`). */
  #kmsKey(k: PolicyKey, unavailable: string[]): PolicyKey {
    const reference = k.kms as string;
    const held = this.#deps.kmsKey?.(reference) ?? { state: "failed", problem: "no KMS keyring" };
    let problem: string;
    if (held.state === "ready") {
      try {
        return { ...k, key: parseTrustedKey({ name: k.name, pem: held.pem }), unavailable: undefined };
      } catch (err) {
        problem = `the KMS returned an unusable key: ${(err as Error).message}`;
      }
    } else problem = held.state === "pending" ? "not fetched yet" : held.problem;
    unavailable.push(`${k.name} (${reference}): ${problem}`);
    return { ...k, key: undefined, unavailable: problem };
  }
}

function reaches(upstreams: readonly string[], upstream: string): boolean {
  return upstreams.includes("*") || upstreams.includes(upstream);
}

/** `record[key]` only when it is the record's own entry ("constructor" is not a project of every config). */
function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The JSON view of a policy for the admin API: keys by name and fingerprint only. */
export function toPolicyView(p: EffectivePolicy): Record<string, unknown> {
  const view: Record<string, unknown> = { project: p.project };
  for (const name of PROJECT_OPTION_NAMES) {
    if (name === "pull") continue; // not a signature policy, not in the admin API
    if (name === "keys")
      view.keys = p.keys.map((k) => ({
        name: k.name,
        ...(k.kms !== undefined ? { kms: k.kms } : {}),
        fingerprint: k.key?.fingerprint ?? null,
        ...(k.unavailable !== undefined ? { unavailable: k.unavailable } : {}),
        transparencyLog: k.transparencyLog,
        trustedRoot: k.root.name,
        ...(k.notBefore !== undefined ? { notBefore: new Date(k.notBefore).toISOString() } : {}),
        ...(k.notAfter !== undefined ? { notAfter: new Date(k.notAfter).toISOString() } : {}),
      }));
    else if (name === "attestations")
      view.attestations = p.attestations.map(({ compiled: _compiled, ...spec }) => spec);
    else if (name === "keyless")
      view.keyless = p.keyless.map((k) => ({ ...k.identity.spec, trustedRoot: k.root.name }));
    else view[name] = p[name] ?? null;
  }
  view.source = p.source;
  view.fingerprint = p.fingerprint;
  return view;
}
