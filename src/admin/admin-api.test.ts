import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryPolicyStore, PolicyRegistry } from "../policy/index.ts";
import { FakeRegistry, fakeLegacySignature, pushImage } from "../pull/fake-registry.test-helpers.ts";
import { createMemoryLogger } from "../telemetry/index.ts";
import { parseTrustedKey } from "../verify/index.ts";
import { createAdminApp } from "./admin-app.ts";
import { type AdminRole, createAdminAuthenticator } from "./admin-auth.ts";

const UP = "http://up.test:5000";
const TOKEN = "admin-token-0123456789";
const trusted = generateTestKey();
const other = generateTestKey();

const CONFIG = {
  upstreams: [{ name: "local", url: UP }],
  admin: { token: TOKEN },
  defaults: { mode: "audit" },
  projects: {
    team: {
      mode: "enforce",
      keys: [{ name: "trusted", pem: trusted.publicKeyPem, transparencyLog: "optional" }],
    },
  },
};

let agent: MockAgent;
let registry: FakeRegistry;
let deps: Deps;
let logger: ReturnType<typeof createMemoryLogger>;
let apps: ReturnType<typeof createApps>;

beforeEach(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  registry = new FakeRegistry(agent, UP);
  logger = createMemoryLogger();
  const config = parseConfig(JSON.stringify(CONFIG), { source: "test", baseDir: ".", env: {} });
  deps = await createDeps(config, { logger, dispatcherFor: () => agent });
  apps = createApps(deps);
});

afterEach(async () => {
  await deps.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

function admin(
  path: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
) {
  return apps.admin.request(path, { ...init, headers: { ...auth, ...init.headers } });
}

const put = (project: string, body: unknown) =>
  admin(`/admin/v1/projects/${project}/policy`, {
    method: "PUT",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });

interface PolicyView {
  project: string;
  mode: string;
  keys: Array<{ name: string; fingerprint: string }>;
  source: string;
  fingerprint: string;
  signatureRepository: string | null;
}

async function view(project: string): Promise<PolicyView> {
  return (await (await admin(`/admin/v1/projects/${project}/policy`)).json()) as PolicyView;
}

async function firstError(res: Response): Promise<{ code: string; detail?: Record<string, unknown> }> {
  return (
    ((await res.json()) as { errors: Array<{ code: string; detail?: Record<string, unknown> }> })
      .errors[0] ?? {
      code: "",
    }
  );
}

const changes = () => logger.records.filter((r) => r.event === "audit" && r.kind === "admin-change");

describe("reading policies", () => {
  it("lists configured projects and the defaults, showing keys by name and fingerprint only", async () => {
    const res = await admin("/admin/v1/projects");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("PUBLIC KEY");
    const body = JSON.parse(text) as { projects: PolicyView[]; defaults: PolicyView };
    expect(body.projects.map((p) => [p.project, p.mode, p.source])).toEqual([["team", "enforce", "config"]]);
    expect(body.projects[0]?.keys).toEqual([
      {
        name: "trusted",
        fingerprint: parseTrustedKey({ name: "t", pem: trusted.publicKeyPem }).fingerprint,
        transparencyLog: expect.stringMatching(/^(required|optional)$/),
        trustedRoot: "public-good",
      },
    ]);
    expect(body.defaults).toMatchObject({ mode: "audit", source: "defaults" });
  });

  it("shows an unlisted project's policy as the defaults", async () => {
    expect(await view("newcomer")).toMatchObject({ project: "newcomer", mode: "audit", source: "defaults" });
  });
});

describe("changing policies", () => {
  it("PUT merges the change, answers the new policy, audits before and after, and the next pull uses it", async () => {
    const image = pushImage(registry, "team/app", "v1");
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
    const before = await view("team");

    const res = await put("team", { mode: "audit" });
    expect(res.status).toBe(200);
    const after = (await res.json()) as PolicyView;
    expect(after).toMatchObject({ project: "team", mode: "audit", source: "runtime", keys: before.keys });
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect(await view("team")).toEqual(after);
    expect(changes()).toEqual([
      expect.objectContaining({ actor: "token", action: "policy.update", target: "team", before, after }),
    ]);

    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(200);
    expect(logger.records.filter((r) => r.kind === "manifest-decision").at(-1)).toMatchObject({
      digest: image.digest,
      outcome: "would-deny",
    });
  });

  it("PUT that enforces with no signer is accepted with a warning that every image is denied", async () => {
    const res = await put("lonely", { mode: "enforce", keys: [] });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { warnings?: string[] }).warnings).toEqual([
      "mode is enforce and the policy trusts no key and no keyless identity: every image is denied (add keys or keyless, or set mode off)",
    ]);
    const fine = await put("lonely", { mode: "off" });
    expect(((await fine.json()) as { warnings?: string[] }).warnings).toBeUndefined();
  });

  it("PUT with new keys takes effect at once (no stale cached allow)", async () => {
    const image = pushImage(registry, "team/app", "v1");
    fakeLegacySignature(registry, "team/app", image.digest, trusted);
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(200);
    expect(
      (await put("team", { keys: [{ name: "other", pem: other.publicKeyPem, transparencyLog: "optional" }] }))
        .status,
    ).toBe(200);
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
  });

  it("DELETE returns the project to its config policy, audited with before and after", async () => {
    const original = await view("team");
    await put("team", { mode: "off", signatureRepository: "team/sigs" });
    const changed = await view("team");
    const res = await admin("/admin/v1/projects/team/policy", { method: "DELETE" });
    expect(res.status).toBe(200);
    const after = await res.json();
    expect(after).toEqual(original);
    expect(changes()[1]).toMatchObject({
      actor: "token",
      action: "policy.reset",
      target: "team",
      before: changed,
      after: original,
    });
  });

  it.each([
    ["not JSON", "{mode: enforce}"],
    ["empty", ""],
    // a valid change, padded with whitespace past the 256 KiB cap
    ["oversized", `{"mode": "off"${" ".repeat(300 * 1024)}}`],
  ])("PUT with a body that is %s → 400, nothing changed", async (_, body) => {
    const before = await view("team");
    const res = await put("team", body);
    expect(res.status).toBe(400);
    expect(await view("team")).toEqual(before);
    expect(changes()).toEqual([]);
  });

  it("PUT with an invalid policy → 400 POLICY_INVALID with detail.problems, nothing changed", async () => {
    const before = await view("team");
    const res = await put("team", { mode: "block", keys: [{ name: "bad", pem: "nope" }] });
    expect(res.status).toBe(400);
    const err = await firstError(res);
    expect(err.code).toBe("POLICY_INVALID");
    const problems = err.detail?.problems;
    expect(Array.isArray(problems) && problems.length > 0).toBe(true);
    const keyRes = await put("team", { keys: [{ name: "bad", pem: "nope" }] });
    expect(keyRes.status).toBe(400);
    expect((await firstError(keyRes)).code).toBe("POLICY_INVALID");
    expect(await view("team")).toEqual(before);
    expect(changes()).toEqual([]);
  });

  it.each(["a%2Fb", "Team", "team..x", "-team"])(
    "project name %s → 400 on GET, PUT and DELETE",
    async (name) => {
      expect((await admin(`/admin/v1/projects/${name}/policy`)).status).toBe(400);
      expect((await put(name, { mode: "off" })).status).toBe(400);
      expect((await admin(`/admin/v1/projects/${name}/policy`, { method: "DELETE" })).status).toBe(400);
      expect(changes()).toEqual([]);
      expect(deps.policies.list().map((p) => p.project)).toEqual(["team"]);
    },
  );

  it("a change the store cannot persist answers 503 and changes nothing", async () => {
    const store = createMemoryPolicyStore();
    store.put = () => Promise.reject(Object.assign(new Error("redis down"), { code: "ECONNREFUSED" }));
    const policies = new PolicyRegistry(deps.config, {
      store,
      logger,
    });
    const app = createAdminApp({
      pull: deps.pull,
      isDraining: () => false,
      api: {
        policies,
        cache: deps.cache,
        auth: createAdminAuthenticator({ token: deps.config.admin.token, jwt: undefined }),
        audit: deps.audit,
        logger,
      },
    });
    const res = await app.request("/admin/v1/projects/team/policy", {
      method: "PUT",
      body: JSON.stringify({ mode: "off" }),
      headers: auth,
    });
    expect(res.status).toBe(503);
    expect((await firstError(res)).code).toBe("UNAVAILABLE");
    expect(policies.forProject("team").mode).toBe("enforce");
    expect(changes()).toEqual([]);
  });
});

describe("verdict cache", () => {
  it("DELETE /admin/v1/cache/<digest> drops the verdicts: the next pull verifies again", async () => {
    const image = pushImage(registry, "team/app", "v1");
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
    expect(deps.metrics.signatureLookups.value()).toBe(1);
    const res = await admin(`/admin/v1/cache/${image.digest}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ digest: image.digest, deleted: 1 });
    expect(changes()).toEqual([
      expect.objectContaining({
        actor: "token",
        action: "cache.delete",
        target: image.digest,
        after: { deleted: 1 },
      }),
    ]);
    fakeLegacySignature(registry, "team/app", image.digest, trusted);
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(200);
    expect(deps.metrics.signatureLookups.value()).toBe(2);
  });

  it.each(["sha256:xyz", "md5:0123", `sha256:${"A".repeat(64)}`, "latest"])(
    "DELETE with the bad digest %s → 400",
    async (digest) => {
      const res = await admin(`/admin/v1/cache/${digest}`, { method: "DELETE" });
      expect(res.status).toBe(400);
      expect((await firstError(res)).code).toBe("DIGEST_INVALID");
      expect(changes()).toEqual([]);
    },
  );
});

describe("dry-run verify", () => {
  it("reports the decision and the signatures without reading or writing the verdict cache", async () => {
    const image = pushImage(registry, "team/app", "v1");
    fakeLegacySignature(registry, "team/app", image.digest, trusted);
    const res = await admin("/admin/v1/verify", {
      method: "POST",
      body: JSON.stringify({ reference: "team/app:v1" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      repository: "team/app",
      project: "team",
      mode: "enforce",
      digest: image.digest,
      outcome: "allow",
      via: "signature",
      key: "trusted",
      signatures: [expect.objectContaining({ result: "verified" })],
    });
    expect(await deps.cache.get(deps.policies.forProject("team").fingerprint, image.digest)).toBeUndefined();
    const unsigned = pushImage(registry, "team/app", "v2");
    const denied = await admin("/admin/v1/verify", {
      method: "POST",
      body: JSON.stringify({ reference: `team/app@${unsigned.digest}` }),
    });
    expect(await denied.json()).toMatchObject({ outcome: "deny", reason: "NO_SIGNATURE", signatures: [] });
  });

  it("an unknown image → 404 MANIFEST_UNKNOWN; a body without reference → 400", async () => {
    const missing = await admin("/admin/v1/verify", {
      method: "POST",
      body: JSON.stringify({ reference: "team/app:nope" }),
    });
    expect(missing.status).toBe(404);
    expect((await firstError(missing)).code).toBe("MANIFEST_UNKNOWN");
    expect((await admin("/admin/v1/verify", { method: "POST", body: "{}" })).status).toBe(400);
  });
});

describe("admin roles", () => {
  /** The admin app with an authenticator that lets everyone in as `roles` (JWT checks: admin-auth.test.ts). */
  function appWithRoles(roles: AdminRole[]) {
    return createAdminApp({
      pull: deps.pull,
      isDraining: () => false,
      api: {
        policies: deps.policies,
        cache: deps.cache,
        auth: { authenticate: async () => ({ ok: true, actor: "jwt:ci", roles }) },
        audit: deps.audit,
        logger,
      },
    });
  }
  const send = (app: ReturnType<typeof appWithRoles>, path: string, method = "GET", body?: unknown) =>
    app.request(path, {
      method,
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
        : {}),
    });

  it("write:<project> changes that project's policy (audited with the role) and nothing else", async () => {
    const app = appWithRoles(["write:team"]);
    const res = await send(app, "/admin/v1/projects/team/policy", "PUT", { mode: "audit" });
    expect(res.status).toBe(200);
    expect(deps.policies.forProject("team")).toMatchObject({ mode: "audit", source: "runtime" });
    expect(changes()).toEqual([
      expect.objectContaining({
        actor: "jwt:ci",
        role: "write:team",
        action: "policy.update",
        target: "team",
      }),
    ]);

    const other = await send(app, "/admin/v1/projects/other/policy", "PUT", { mode: "off" });
    expect(other.status).toBe(403);
    expect((await firstError(other)).code).toBe("DENIED");
    expect(deps.policies.forProject("other").source).toBe("defaults");
    expect((await send(app, "/admin/v1/projects/team/policy")).status).toBe(403);
    expect(changes()).toHaveLength(1);
  });

  it("read cannot change a policy or drop cached verdicts; the verdict stays cached", async () => {
    const image = pushImage(registry, "team/app", "v1");
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
    const app = appWithRoles(["read"]);
    expect((await send(app, "/admin/v1/projects/team/policy")).status).toBe(200);
    expect((await send(app, "/admin/v1/projects/team/policy", "PUT", { mode: "off" })).status).toBe(403);
    expect((await send(app, "/admin/v1/projects/team/policy", "DELETE")).status).toBe(403);
    const drop = await send(app, `/admin/v1/cache/${image.digest}`, "DELETE");
    expect(drop.status).toBe(403);
    expect((await firstError(drop)).code).toBe("DENIED");
    expect(deps.policies.forProject("team").mode).toBe("enforce");
    expect((await apps.proxy.request("/v2/team/app/manifests/v1")).status).toBe(403);
    expect(deps.metrics.signatureLookups.value()).toBe(1);
    expect(changes()).toEqual([]);
  });
});
