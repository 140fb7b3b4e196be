import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { FakeRegistry, fakeLegacySignature, pushImage } from "../pull/fake-registry.test-helpers.ts";
import {
  AUDIT_OUTCOMES,
  createAuditLog,
  type ManifestDecisionRecord,
  RecentDecisions,
  silentLogger,
} from "../telemetry/index.ts";
import { createAdminApp } from "./admin-app.ts";
import type { AdminAuthenticator, AdminRole } from "./admin-auth.ts";

function record(over: Partial<ManifestDecisionRecord> = {}): ManifestDecisionRecord {
  return {
    project: "team",
    repository: "team/app",
    upstream: "local",
    reference: "v1",
    digest: `sha256:${"a".repeat(64)}`,
    method: "GET",
    mode: "enforce",
    outcome: "deny",
    reason: "NO_SIGNATURE",
    durationMs: 1,
    ...over,
  };
}

describe("RecentDecisions (the ring)", () => {
  it("lists newest first with a sequence number and a time, and drops the oldest past its capacity", () => {
    let t = Date.parse("2030-01-02T03:04:05.000Z");
    const ring = new RecentDecisions({ capacity: 3, now: () => t++ });
    expect(ring.list()).toEqual([]);
    for (let i = 1; i <= 5; i++) ring.decision(record({ reference: `v${i}` }));
    expect(ring.size).toBe(3);
    const listed = ring.list();
    expect(listed.map((d) => [d.seq, d.reference])).toEqual([
      [5, "v5"],
      [4, "v4"],
      [3, "v3"],
    ]);
    expect(listed[0]?.at).toBe("2030-01-02T03:04:05.004Z");
    expect(ring.list({ limit: 2 }).map((d) => d.reference)).toEqual(["v5", "v4"]);
  });

  it("filters by project, outcome and repository (exact values, all of them)", () => {
    const ring = new RecentDecisions({ capacity: 10 });
    ring.decision(record({ project: "a", repository: "a/x", outcome: "allow", reason: undefined }));
    ring.decision(record({ project: "a", repository: "a/y", outcome: "deny" }));
    ring.decision(record({ project: "b", repository: "b/x", outcome: "would-deny" }));
    ring.decision(record({ project: "a", repository: "a/x", outcome: "deny" }));
    const refs = (f: Parameters<RecentDecisions["list"]>[0]) =>
      ring.list(f).map((d) => `${d.seq}:${d.project}:${d.repository}:${d.outcome}`);
    expect(refs({ project: "a" })).toEqual(["4:a:a/x:deny", "2:a:a/y:deny", "1:a:a/x:allow"]);
    expect(refs({ outcome: "deny" })).toEqual(["4:a:a/x:deny", "2:a:a/y:deny"]);
    expect(refs({ repository: "a/x", outcome: "deny" })).toEqual(["4:a:a/x:deny"]);
    expect(refs({ repository: "a" })).toEqual([]);
    expect(refs({ project: "a", limit: 1 })).toEqual(["4:a:a/x:deny"]);
    // No undefined fields are kept.
    expect(Object.keys(ring.list({ outcome: "allow" })[0] ?? {})).not.toContain("reason");
  });

  it("keeps a frozen copy with long strings capped (bounded memory whatever a record says)", () => {
    const ring = new RecentDecisions({ capacity: 2 });
    const original = record({ detail: "x".repeat(100_000) });
    ring.decision(original);
    original.reason = "CHANGED";
    const [kept] = ring.list();
    expect(kept?.reason).toBe("NO_SIGNATURE");
    expect(kept?.detail?.length).toBeLessThanOrEqual(2_049);
    expect(Object.isFrozen(kept)).toBe(true);
  });

  it("is an audit sink: every decision the audit log records reaches it, admin changes do not", () => {
    const ring = new RecentDecisions();
    const audit = createAuditLog(silentLogger, [ring]);
    audit.decision(record());
    audit.adminChange({ actor: "token", action: "policy.update", target: "team" });
    expect(ring.list()).toHaveLength(1);
    expect(ring.capacity).toBe(1_000);
  });

  it("refuses a capacity that is not a positive integer", () => {
    expect(() => new RecentDecisions({ capacity: 0 })).toThrow(RangeError);
    expect(() => new RecentDecisions({ capacity: 1.5 })).toThrow(RangeError);
  });

  it("knows every audit outcome", () => {
    expect([...AUDIT_OUTCOMES].sort()).toEqual(["allow", "deny", "exempt", "off", "would-deny"]);
  });
});

describe("GET /admin/v1/decisions (roles)", () => {
  function appWith(roles: AdminRole[] | "none", ring = new RecentDecisions()) {
    const auth: AdminAuthenticator = {
      authenticate: async (authorization) =>
        roles === "none" || authorization !== "Bearer t"
          ? { ok: false, status: 401, message: "invalid admin credentials" }
          : { ok: true, actor: "jwt:someone", roles },
    };
    const app = createAdminApp({
      pull: {} as never,
      isDraining: () => false,
      api: {
        policies: {} as never,
        cache: {} as never,
        auth,
        audit: createAuditLog(silentLogger),
        logger: silentLogger,
        decisions: ring,
      },
    });
    return { app, ring };
  }

  it("needs a credential: 401 without one, 403 for a role that cannot read", async () => {
    expect((await appWith(["read"]).app.request("/admin/v1/decisions")).status).toBe(401);
    const res = await appWith(["write:team"]).app.request("/admin/v1/decisions", {
      headers: { authorization: "Bearer t" },
    });
    expect(res.status).toBe(403);
  });

  it("answers the role read", async () => {
    const { app, ring } = appWith(["read"]);
    ring.decision(record());
    const res = await app.request("/admin/v1/decisions", { headers: { authorization: "Bearer t" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ remembered: 1, capacity: 1_000, decisions: [record()] });
  });
});

const UP = "http://up.test:5000";
const TOKEN = "admin-token-0123456789";
const trusted = generateTestKey();

describe("GET /admin/v1/decisions (a pullgate's own decisions)", () => {
  let agent: MockAgent;
  let registry: FakeRegistry;
  let deps: Deps;
  let apps: ReturnType<typeof createApps>;

  beforeEach(async () => {
    agent = new MockAgent();
    agent.disableNetConnect();
    registry = new FakeRegistry(agent, UP);
    const config = parseConfig(
      JSON.stringify({
        upstreams: [{ name: "local", url: UP }],
        admin: { token: TOKEN },
        defaults: { mode: "audit" },
        projects: {
          team: {
            mode: "enforce",
            keys: [{ name: "trusted", pem: trusted.publicKeyPem, transparencyLog: "optional" }],
          },
        },
      }),
      { source: "test", baseDir: ".", env: {} },
    );
    deps = await createDeps(config, { logger: silentLogger, dispatcherFor: () => agent });
    apps = createApps(deps);
  });

  afterEach(async () => {
    await deps.close();
  });

  const decisions = async (query = "") => {
    const res = await apps.admin.request(`/admin/v1/decisions${query}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("lists the proxy's decisions newest first, each deny with its reason, filtered on request", async () => {
    const signed = pushImage(registry, "team/signed", "v1");
    fakeLegacySignature(registry, "team/signed", signed.digest, trusted);
    const unsigned = pushImage(registry, "team/unsigned", "v1");
    const other = pushImage(registry, "other/app", "v1");
    expect((await apps.proxy.request("/v2/team/signed/manifests/v1")).status).toBe(200);
    expect((await apps.proxy.request("/v2/team/unsigned/manifests/v1")).status).toBe(403);
    expect((await apps.proxy.request("/v2/other/app/manifests/v1")).status).toBe(200);

    const all = await decisions();
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ remembered: 3, capacity: 1_000 });
    const list = all.body.decisions as Array<Record<string, unknown>>;
    expect(list.map((d) => [d.repository, d.outcome])).toEqual([
      ["other/app", "would-deny"],
      ["team/unsigned", "deny"],
      ["team/signed", "allow"],
    ]);
    expect(list[1]).toMatchObject({
      project: "team",
      upstream: "local",
      reference: "v1",
      digest: unsigned.digest,
      mode: "enforce",
      reason: expect.any(String),
      seq: 2,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(list[0]?.digest).toBe(other.digest);

    const pick = async (q: string) =>
      ((await decisions(q)).body.decisions as Array<Record<string, unknown>>).map((d) => d.repository);
    expect(await pick("?project=team")).toEqual(["team/unsigned", "team/signed"]);
    expect(await pick("?outcome=deny")).toEqual(["team/unsigned"]);
    expect(await pick("?repository=team/signed")).toEqual(["team/signed"]);
    expect(await pick("?project=team&outcome=would-deny")).toEqual([]);
    expect(await pick("?limit=1")).toEqual(["other/app"]);
    expect(await pick("?outcome=")).toHaveLength(3);
  });

  it.each([
    "?outcome=denied",
    "?limit=0",
    "?limit=1001",
    "?limit=ten",
    "?limit=1.5",
    "?limit=-1",
    `?repository=${"a".repeat(513)}`,
  ])("refuses %s with 400", async (query) => {
    const res = await decisions(query);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: [{ code: "UNSUPPORTED" }] });
  });

  it("is not there without credentials", async () => {
    expect((await apps.admin.request("/admin/v1/decisions")).status).toBe(401);
    expect(
      (await apps.admin.request("/admin/v1/decisions", { headers: { authorization: "Bearer nope" } })).status,
    ).toBe(401);
  });
});
