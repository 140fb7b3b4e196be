import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { ConfigError, parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";
import { parseTrustedKey } from "../verify/index.ts";
import { PolicyRegistry, PolicyValidationError } from "./policy-registry.ts";
import { createMemoryPolicyStore, type PolicyStore } from "./policy-store.ts";

const k1 = generateTestKey().publicKeyPem;
const k2 = generateTestKey().publicKeyPem;
const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
  type: "spki",
  format: "pem",
}) as string;
const secp256k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey.export({
  type: "spki",
  format: "pem",
}) as string;
const fingerprintOf = (pem: string) => parseTrustedKey({ name: "k", pem }).fingerprint;

const BASE = {
  upstreams: [{ name: "up", url: "http://up.test" }],
  defaults: { mode: "audit", keys: [{ name: "default-key", pem: k2 }] },
  projects: {
    team: {
      mode: "enforce",
      keys: [
        { name: "k1", pem: k1 },
        { name: "k2", pem: k2 },
      ],
      exempt: ["team/tools/*", "team/vendor/**"],
      signatureRepository: "team/signatures",
      onLookupError: "deny",
      gateHead: false,
      strictBlobs: false,
    },
  },
};

function setup(raw: object = BASE, store: PolicyStore = createMemoryPolicyStore()) {
  const config = parseConfig(JSON.stringify(raw), { source: "test", baseDir: ".", env: {} });
  const logger = createMemoryLogger();
  const registry = new PolicyRegistry(config, {
    store,
    logger,
  });
  return { config, store, registry, logger };
}

describe("project resolution", () => {
  it("judges a repository under its first path segment's policy", () => {
    const { registry } = setup();
    const p = registry.forRepository("team/app/sub");
    expect(p).toMatchObject({ project: "team", mode: "enforce", source: "config" });
    expect(p.keys.map((k) => k.name)).toEqual(["k1", "k2"]);
    expect(p.keys[0]?.key?.fingerprint).toBe(fingerprintOf(k1));
    expect(registry.forRepository("library/nginx").project).toBe("library");
  });

  it("gives unlisted projects the defaults, each under its own name", () => {
    const { registry } = setup();
    const p = registry.forRepository("library/nginx");
    expect(p).toMatchObject({
      project: "library",
      mode: "audit",
      source: "defaults",
      signatureRepository: undefined,
    });
    expect(p.keys.map((k) => k.name)).toEqual(["default-key"]);
    expect(registry.forRepository("nginx")).toMatchObject({ project: "nginx", source: "defaults" });
  });

  it("lists configured projects and projects that exist only as runtime overrides", async () => {
    const { registry } = setup();
    await registry.update("late", { mode: "enforce" });
    expect(registry.list().map((p) => [p.project, p.source])).toEqual([
      ["late", "runtime"],
      ["team", "config"],
    ]);
  });
});

describe("update", () => {
  it("merges a partial change into the project's policy: {mode} keeps keys and everything else", async () => {
    const { registry, store } = setup();
    const original = registry.forProject("team");
    const { before, after } = await registry.update("team", { mode: "audit" });
    expect(before).toBe(original);
    expect(after).toMatchObject({
      mode: "audit",
      exempt: original.exempt,
      signatureRepository: "team/signatures",
      source: "runtime",
    });
    expect(after.keys).toEqual(original.keys);
    expect(registry.forProject("team")).toBe(after);
    // A second patch merges into the stored override, not into the config.
    const next = await registry.update("team", { onLookupError: "allow" });
    expect(next.after).toMatchObject({ mode: "audit", onLookupError: "allow" });
    expect(await store.load()).toEqual({ team: { mode: "audit", onLookupError: "allow" } });
  });

  it("a full object replaces every option", async () => {
    const { registry } = setup();
    const full = {
      mode: "off",
      keys: [{ name: "only", pem: k1 }],
      exempt: ["team/x"],
      signatureRepository: "team/other-sigs",
      onLookupError: "allow",
      gateHead: true,
      strictBlobs: true,
    };
    const { after } = await registry.update("team", full);
    expect(after).toMatchObject({
      mode: "off",
      exempt: ["team/x"],
      signatureRepository: "team/other-sigs",
      onLookupError: "allow",
      gateHead: true,
      strictBlobs: true,
    });
    expect(after.keys.map((k) => [k.name, k.key?.fingerprint])).toEqual([["only", fingerprintOf(k1)]]);
  });

  it("signatureRepository: null clears the configured one, and stays cleared across later patches", async () => {
    const { registry } = setup();
    expect(
      (await registry.update("team", { signatureRepository: null })).after.signatureRepository,
    ).toBeUndefined();
    expect((await registry.update("team", { mode: "off" })).after.signatureRepository).toBeUndefined();
  });

  it.each([
    ["a bad mode", { mode: "block" }, /^mode:/],
    ["an unknown field", { mode: "enforce", extra: true }, /^\(body\):/],
    ["a key that is not PEM", { keys: [{ name: "bad", pem: "not a key" }] }, /^keys\[0\]: key bad:/],
    ["an RSA-1024 key", { keys: [{ name: "weak", pem: rsa1024 }] }, /^keys\[0\]: key weak:/],
    ["an unsupported curve", { keys: [{ name: "k256", pem: secp256k1 }] }, /^keys\[0\]: key k256:/],
    ["an exempt pattern with regex syntax", { exempt: ["team/(a|b)"] }, /^exempt\.0:/],
    ["an invalid signatureRepository", { signatureRepository: "Team/Sigs" }, /^signatureRepository:/],
    ["a body that is not an object", ["enforce"], /^\(body\):/],
    [
      "an attestation condition that does not compile",
      { attestations: [{ name: "scan", predicateType: "https://x/v1", condition: "predicate.(" }] },
      /^attestations\[0\]\.condition: Syntax error/,
    ],
    ["a required signer the policy does not name", { requiredSigners: ["nobody"] }, /^requiredSigners\[0\]:/],
    ["a threshold above the signers", { threshold: 5 }, /^threshold: 5 signers required/],
    ["an unsupported KMS", { keys: [{ name: "v", kms: "azurekms://vault/key" }] }, /^keys\[0\]\.kms: /],
  ])("rejects %s with PolicyValidationError and stores nothing", async (_, patch, problem) => {
    const { registry, store } = setup();
    await registry.update("team", { mode: "audit" });
    const current = registry.forProject("team");
    const err = await registry.update("team", patch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyValidationError);
    expect((err as PolicyValidationError).code).toBe("POLICY_INVALID");
    expect((err as PolicyValidationError).problems.some((p) => problem.test(p))).toBe(true);
    expect(await store.load()).toEqual({ team: { mode: "audit" } });
    expect(registry.override("team")).toEqual({ mode: "audit" });
    expect(registry.forProject("team")).toBe(current);
    // Nothing stored for a project that had no override either.
    await expect(registry.update("fresh", patch)).rejects.toBeInstanceOf(PolicyValidationError);
    expect(registry.override("fresh")).toBeUndefined();
    expect(Object.keys(await store.load())).toEqual(["team"]);
  });

  // Regression (was a bug): update() computes `merged` from `this.#overrides[project]` synchronously, then awaits
  // store.put(); a second update of the same project issued before the first one's put resolved
  // merges into the same old override, so the later write drops the earlier change (lost update):
  // two concurrent PUTs {"mode":"audit"} and {"strictBlobs":true} leave only {"strictBlobs":true}.
  it("concurrent partial updates of one project both apply", async () => {
    const { registry, store } = setup();
    await Promise.all([
      registry.update("team", { mode: "audit" }),
      registry.update("team", { strictBlobs: true }),
    ]);
    expect(await store.load()).toEqual({ team: { mode: "audit", strictBlobs: true } });
    expect(registry.forProject("team")).toMatchObject({ mode: "audit", strictBlobs: true });
  });

  it("stores nothing and changes nothing when the store cannot persist", async () => {
    const store = createMemoryPolicyStore();
    store.put = () => Promise.reject(Object.assign(new Error("redis down"), { code: "ECONNREFUSED" }));
    const { registry } = setup(BASE, store);
    const current = registry.forProject("team");
    await expect(registry.update("team", { mode: "off" })).rejects.toThrow();
    expect(registry.forProject("team")).toBe(current);
    expect(registry.override("team")).toBeUndefined();
  });
});

describe("fingerprint", () => {
  const changes: Array<[string, object]> = [
    ["mode", { mode: "audit" }],
    ["keys (one removed)", { keys: [{ name: "k1", pem: k1 }] }],
    [
      "keys (one added)",
      {
        keys: [
          { name: "k1", pem: k1 },
          { name: "k2", pem: k2 },
          { name: "k3", pem: generateTestKey().publicKeyPem },
        ],
      },
    ],
    ["exempt", { exempt: ["team/tools/*"] }],
    ["signatureRepository", { signatureRepository: "team/elsewhere" }],
    ["signatureRepository cleared", { signatureRepository: null }],
    ["onLookupError", { onLookupError: "allow" }],
    ["strictBlobs", { strictBlobs: true }],
  ];
  it.each(changes)("changes when %s changes", async (_, patch) => {
    const { registry } = setup();
    const before = registry.forProject("team").fingerprint;
    const { after } = await registry.update("team", patch);
    expect(after.fingerprint).not.toBe(before);
  });

  const same: Array<[string, object]> = [
    ["the same values are set again", BASE.projects.team],
    [
      "keys are reordered",
      {
        keys: [
          { name: "k2", pem: k2 },
          { name: "k1", pem: k1 },
        ],
      },
    ],
    [
      "a key is renamed",
      {
        keys: [
          { name: "first", pem: k1 },
          { name: "k2", pem: k2 },
        ],
      },
    ],
    ["exempt is reordered", { exempt: ["team/vendor/**", "team/tools/*"] }],
    ["gateHead changes (HEAD handling changes no verdict)", { gateHead: true }],
  ];
  it.each(same)("stays equal when %s", async (_, patch) => {
    const { registry } = setup();
    const before = registry.forProject("team").fingerprint;
    const { after } = await registry.update("team", patch);
    expect(after.source).toBe("runtime");
    expect(after.fingerprint).toBe(before);
  });

  it("is stable across registries built from the same config", () => {
    expect(setup().registry.forProject("team").fingerprint).toBe(
      setup().registry.forProject("team").fingerprint,
    );
  });
});

describe("reset", () => {
  it("returns a project to its config policy and drops the stored override", async () => {
    const { registry, store } = setup();
    const original = registry.forProject("team");
    await registry.update("team", { mode: "off", keys: [] });
    const { before, after } = await registry.reset("team");
    expect(before.mode).toBe("off");
    expect(after).toMatchObject({ mode: "enforce", source: "config", fingerprint: original.fingerprint });
    expect(after.keys).toEqual(original.keys);
    expect(await store.load()).toEqual({});
    expect(registry.override("team")).toBeUndefined();
  });

  it("returns an override-only project to the defaults", async () => {
    const { registry } = setup();
    const defaults = registry.forProject("late");
    await registry.update("late", { mode: "enforce" });
    const { after } = await registry.reset("late");
    expect(after).toMatchObject({ mode: "audit", source: "defaults", fingerprint: defaults.fingerprint });
    expect(registry.list().map((p) => p.project)).toEqual(["team"]);
  });
});

describe("store changes (another replica)", () => {
  it("reloads when the store reports a change", async () => {
    const { registry, store } = setup();
    await registry.start();
    expect(registry.forProject("other").mode).toBe("audit"); // cached now
    await store.put("other", { mode: "enforce" });
    await vi.waitFor(() =>
      expect(registry.forProject("other")).toMatchObject({ mode: "enforce", source: "runtime" }),
    );
    await store.remove("other");
    await vi.waitFor(() =>
      expect(registry.forProject("other")).toMatchObject({ mode: "audit", source: "defaults" }),
    );
    await registry.close();
    await store.put("other", { mode: "off" });
    await new Promise((r) => setTimeout(r, 10));
    expect(registry.forProject("other").mode).toBe("audit");
  });

  it("keeps the built policies when a reload finds the store unchanged (the periodic reconcile)", async () => {
    const { registry, store } = setup();
    await store.put("team", { mode: "off" });
    await registry.start();
    const built = registry.forProject("team");
    await registry.reload();
    expect(registry.forProject("team")).toBe(built);
    await store.put("team", { mode: "enforce" });
    await registry.reload();
    expect(registry.forProject("team")).not.toBe(built);
    expect(registry.forProject("team").mode).toBe("enforce");
    await registry.close();
  });

  it("loads stored overrides at start, ignoring (and logging) invalid ones", async () => {
    const store = createMemoryPolicyStore();
    await store.put("team", { mode: "off" });
    await store.put("broken", { mode: "sideways" });
    const { registry, logger } = setup(BASE, store);
    await registry.start();
    expect(registry.forProject("team")).toMatchObject({ mode: "off", source: "runtime" });
    expect(registry.forProject("broken")).toMatchObject({ mode: "audit", source: "defaults" });
    expect(logger.records).toContainEqual(expect.objectContaining({ level: "warn", project: "broken" }));
  });

  it("starts on the config file when the store cannot be read", async () => {
    const store = createMemoryPolicyStore();
    store.load = () => Promise.reject(Object.assign(new Error("down"), { code: "ECONNREFUSED" }));
    const { registry, logger } = setup(BASE, store);
    await registry.start();
    expect(registry.forProject("team")).toMatchObject({ mode: "enforce", source: "config" });
    expect(logger.records).toContainEqual(expect.objectContaining({ level: "warn", code: "ECONNREFUSED" }));
  });
});

describe("configured keys", () => {
  it("are checked when the config is loaded: every unacceptable key is reported by its config path", () => {
    const err = (() => {
      try {
        setup({
          upstreams: [{ name: "up", url: "http://up.test" }],
          defaults: { keys: [{ name: "curve", pem: secp256k1 }] },
          projects: {
            good: { keys: [{ name: "ok", pem: k1 }] },
            bad: {
              keys: [
                { name: "ok", pem: k1 },
                { name: "weak", pem: rsa1024 },
              ],
            },
          },
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^defaults\.keys\[0\]: key curve: /);
    expect(problems[1]).toMatch(/^projects\.bad\.keys\[1\]: key weak: /);
  });

  it("reach the policy parsed, once: the registry hands out verify/'s keys", () => {
    const { registry, config } = setup();
    expect(registry.forProject("team").keys[0]).toBe(config.projects.team?.keys[0]);
    expect(registry.forProject("team").keys[0]?.key?.key.type).toBe("public");
  });
});

describe("exempt", () => {
  it("matches the project's exempt globs against the whole repository name", async () => {
    const { registry } = setup();
    const p = registry.forProject("team");
    expect(p.isExempt("team/tools/curl")).toBe(true);
    expect(p.isExempt("team/tools/curl/sub")).toBe(false);
    expect(p.isExempt("team/vendor/a/b/c")).toBe(true);
    expect(p.isExempt("team/app")).toBe(false);
    const { after } = await registry.update("team", { exempt: ["team/a.b"] });
    expect(after.isExempt("team/a.b")).toBe(true);
    expect(after.isExempt("team/aXb")).toBe(false);
    expect(after.isExempt("team/tools/curl")).toBe(false);
  });
});

// Regression (was a bug): #build and update/forProject index plain objects (`this.#config.projects[project]`,
// `this.#overrides[project]`) by the project name, so "constructor" (a valid repository name
// component) resolves to Object.prototype.constructor: `override?.keys ?? cfg.keys` is the function
// Object.keys and `for (const k of keysIn)` throws "keysIn is not iterable".
it("a project named like an Object.prototype member gets the defaults", () => {
  const { registry } = setup();
  expect(registry.forRepository("constructor/app")).toMatchObject({
    project: "constructor",
    source: "defaults",
  });
});
