import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../config/index.ts";
import type { OciError } from "../oci/index.ts";
import { createPullgateMetrics, createTracer } from "../telemetry/index.ts";
import { UpstreamError } from "./errors.ts";
import { RegistryClient } from "./registry-client.ts";
import { upstreamToOciError } from "./to-oci-error.ts";

const REG = "https://reg.test";
const AUTH = "https://auth.test";
const CHALLENGE = `Bearer realm="${AUTH}/token",service="reg.test",scope="repository:proj/app:pull"`;
const BODY = Buffer.from('{"schemaVersion":2}');

let agent: MockAgent;

beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
});
afterEach(async () => {
  await agent.close();
});

function client(credentials = true): RegistryClient {
  const creds = credentials ? "\n    credentials: { username: bot, password: hunter2 }" : "";
  const config = parseConfig(
    `upstreams:\n  - name: reg\n    url: "${REG}"\n    tokenRealms: ["${AUTH}"]${creds}\n`,
    {
      source: "t",
      baseDir: ".",
      env: {},
    },
  );
  metrics = createPullgateMetrics();
  return new RegistryClient(config.upstreams[0] as never, {
    tracer: createTracer(),
    dispatcher: agent,
    metrics,
  });
}

/** The metrics of the client `client()` made last. */
let metrics = createPullgateMetrics();
const requestsTo = () => metrics.upstreamRequests.value({ upstream: "reg" });

const get = (c: RegistryClient, opts: { clientAuthorization?: string } = {}) =>
  c.getManifest("proj/app", "v1", { method: "GET", accept: undefined, maxBytes: 1 << 20, ...opts });

function registryExpecting(token: string, times = 1) {
  agent
    .get(REG)
    .intercept({
      path: "/v2/proj/app/manifests/v1",
      method: "GET",
      headers: { authorization: `Bearer ${token}` },
    })
    .reply(200, BODY, { headers: { "content-type": "application/json" } })
    .times(times);
}

function challengeOnce() {
  agent
    .get(REG)
    .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
    .reply(
      401,
      { errors: [{ code: "UNAUTHORIZED", message: "auth" }] },
      { headers: { "www-authenticate": CHALLENGE } },
    );
}

describe("token auth", () => {
  it("answers a Bearer challenge with Basic credentials, caches the token per scope, and reuses it", async () => {
    const c = client();
    challengeOnce();
    let tokenAuth: string | undefined;
    agent
      .get(AUTH)
      .intercept({ path: "/token?service=reg.test&scope=repository%3Aproj%2Fapp%3Apull", method: "GET" })
      .reply((opts) => {
        tokenAuth = (opts.headers as Record<string, string>).authorization;
        return { statusCode: 200, data: { token: "T1", expires_in: 300 } };
      });
    registryExpecting("T1", 2);
    expect((await get(c)).bytes?.equals(BODY)).toBe(true);
    expect((await get(c)).bytes?.equals(BODY)).toBe(true);
    expect(c.auth.tokenFetches).toBe(1);
    expect(tokenAuth).toBe(`Basic ${Buffer.from("bot:hunter2").toString("base64")}`);
  });

  it("shares one token fetch among concurrent requests", async () => {
    const c = client(false);
    for (let i = 0; i < 5; i++) challengeOnce();
    agent
      .get(AUTH)
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "T2" });
    registryExpecting("T2", 5);
    await Promise.all([get(c), get(c), get(c), get(c), get(c)]);
    expect(c.auth.tokenFetches).toBe(1);
  });

  it("refreshes once on a 401 with a cached token, then relays a second 401", async () => {
    const c = client(false);
    // Stale token: the registry refuses it, pullgate fetches a new one and retries once.
    challengeOnce();
    agent
      .get(AUTH)
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "old" });
    registryExpecting("old");
    await get(c);
    agent
      .get(REG)
      .intercept({
        path: "/v2/proj/app/manifests/v1",
        method: "GET",
        headers: { authorization: "Bearer old" },
      })
      .reply(401, "", { headers: { "www-authenticate": CHALLENGE } });
    agent
      .get(AUTH)
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "new" });
    registryExpecting("new");
    await get(c);
    expect(c.auth.tokenFetches).toBe(2);
    // Both attempts refused: a STATUS 401 carrying the challenge, no loop.
    challengeOnce();
    challengeOnce();
    agent
      .get(AUTH)
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "x" })
      .times(2);
    c.auth.invalidate("repository:proj/app:pull");
    const err = await get(c).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).status).toBe(401);
    expect((err as UpstreamError).challenge).toBe(CHALLENGE);
  });

  it("forwards the client's own Authorization unchanged and relays the challenge without using its own credentials", async () => {
    const c = client();
    agent
      .get(REG)
      .intercept({
        path: "/v2/proj/app/manifests/v1",
        method: "GET",
        headers: { authorization: "Bearer client" },
      })
      .reply(401, "", { headers: { "www-authenticate": CHALLENGE } });
    const err = (await get(c, { clientAuthorization: "Bearer client" }).catch(
      (e: unknown) => e,
    )) as UpstreamError;
    expect(err.code).toBe("STATUS");
    expect(err.status).toBe(401);
    expect(err.challenge).toBe(CHALLENGE);
    expect(c.auth.tokenFetches).toBe(0);
  });

  it("answers a Basic challenge with configured credentials", async () => {
    const c = client();
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(401, "", { headers: { "www-authenticate": 'Basic realm="r"' } });
    agent
      .get(REG)
      .intercept({
        path: "/v2/proj/app/manifests/v1",
        method: "GET",
        headers: { authorization: `Basic ${Buffer.from("bot:hunter2").toString("base64")}` },
      })
      .reply(200, BODY, { headers: { "content-type": "application/json" } });
    expect((await get(c)).bytes?.equals(BODY)).toBe(true);
  });

  it("reports a token service refusal as AUTH_FAILED", async () => {
    const c = client();
    challengeOnce();
    agent
      .get(AUTH)
      .intercept({ path: /\/token/, method: "GET" })
      .reply(401, "no");
    const err = (await get(c).catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("AUTH_FAILED");
  });
});

describe("redirects", () => {
  it("follows a redirected manifest or listing on the same origin, keeping credentials there", async () => {
    const c = client(false);
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(307, "", { headers: { location: "/v2/proj/moved/manifests/v1" } });
    agent
      .get(REG)
      .intercept({
        path: "/v2/proj/moved/manifests/v1",
        method: "GET",
        headers: { authorization: "Bearer mine" },
      })
      .reply(200, BODY, { headers: { "content-type": "application/json" } });
    const res = await get(c, { clientAuthorization: "Bearer mine" });
    expect(res.bytes?.equals(BODY)).toBe(true);
  });

  it("gives up after 5 redirects", async () => {
    const c = client(false);
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(302, "", { headers: { location: "/v2/proj/app/manifests/v1" } })
      .times(6);
    const err = (await get(c).catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("BAD_RESPONSE");
  });
});

describe("retries", () => {
  it("retries an idempotent request once on a connection reset", async () => {
    const c = client(false);
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .replyWithError(Object.assign(new Error("reset"), { code: "ECONNRESET" }));
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(200, BODY, { headers: { "content-type": "application/json" } });
    expect((await get(c)).bytes?.equals(BODY)).toBe(true);
    expect(requestsTo()).toBe(2);
  });

  it("does not retry a refused connection or a second reset", async () => {
    const c = client(false);
    agent
      .get(REG)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .replyWithError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    expect(((await get(c).catch((e: unknown) => e)) as UpstreamError).code).toBe("UNREACHABLE");
    expect(requestsTo()).toBe(1);
    for (let i = 0; i < 2; i++) {
      agent
        .get(REG)
        .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
        .replyWithError(Object.assign(new Error("reset"), { code: "ECONNRESET" }));
    }
    expect(((await get(c).catch((e: unknown) => e)) as UpstreamError).code).toBe("UNREACHABLE");
    expect(requestsTo()).toBe(3);
  });
});

describe("connection pools", () => {
  it("a client's manifest request never waits behind signature lookups; lookups queue among themselves", async () => {
    // A registry of the test's own (the pools are real undici Agents here, one connection each).
    const seen: string[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const server = createServer((req, res) => {
      seen.push(req.url ?? "");
      const answer = () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(BODY);
      };
      if (req.url?.endsWith("/held")) held.then(answer);
      else answer();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = parseConfig(`upstreams:\n  - name: reg\n    url: "${url}"\n    apiConnections: 1\n`, {
      source: "t",
      baseDir: ".",
      env: {},
    });
    const c = new RegistryClient(config.upstreams[0] as never, { tracer: createTracer() });
    const manifest = (reference: string, lookup: boolean) =>
      c.getManifest("proj/app", reference, { method: "GET", accept: undefined, maxBytes: 1 << 20, lookup });
    try {
      const first = manifest("held", true);
      await expect.poll(() => seen).toEqual(["/v2/proj/app/manifests/held"]);
      const second = manifest("queued", true);
      const client = await manifest("v1", false);
      expect(client.bytes?.equals(BODY)).toBe(true);
      // The client was served on its own connection while the lookup pool's one connection was held.
      expect(seen).toEqual(["/v2/proj/app/manifests/held", "/v2/proj/app/manifests/v1"]);
      release();
      await Promise.all([first, second]);
      expect(seen).toEqual([
        "/v2/proj/app/manifests/held",
        "/v2/proj/app/manifests/v1",
        "/v2/proj/app/manifests/queued",
      ]);
    } finally {
      release();
      await c.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("a login that changes", () => {
  const basic = (password: string) => `Basic ${Buffer.from(`bot:${password}`).toString("base64")}`;
  const BASIC_CHALLENGE = { "www-authenticate": 'Basic realm="r"' };

  function clientWith(credentialsYaml: string, baseDir = "."): RegistryClient {
    const config = parseConfig(
      `upstreams:\n  - name: reg\n    url: "${REG}"\n    credentials: ${credentialsYaml}\n`,
      { source: "t", baseDir, env: {} },
    );
    return new RegistryClient(config.upstreams[0] as never, { tracer: createTracer(), dispatcher: agent });
  }

  const manifestWith = (authorization: string | undefined, status: number) => {
    const reply = status === 200 ? BODY : "";
    agent
      .get(REG)
      .intercept({
        path: "/v2/proj/app/manifests/v1",
        method: "GET",
        ...(authorization ? { headers: { authorization } } : {}),
      })
      .reply(status, reply, {
        headers: status === 401 ? BASIC_CHALLENGE : { "content-type": "application/json" },
      });
  };

  it("a password file rotated: the refused request reads it again and is retried once with the new password", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pullgate-registry-client-"));
    try {
      writeFileSync(join(dir, "pw"), "first-pw\n");
      const c = clientWith("{ username: bot, passwordFile: pw }", dir);
      manifestWith(undefined, 401);
      manifestWith(basic("first-pw"), 200);
      expect((await get(c)).bytes?.equals(BODY)).toBe(true);
      // Basic goes out at once now; the registry's password changes, then the Secret's file.
      manifestWith(basic("first-pw"), 200);
      await get(c);
      writeFileSync(join(dir, "pw"), "second-pw\n");
      manifestWith(basic("first-pw"), 401);
      manifestWith(basic("second-pw"), 200);
      expect((await get(c)).bytes?.equals(BODY)).toBe(true);
      manifestWith(basic("second-pw"), 200);
      await get(c);
      // The same password refused again: one retry after reading the file, then the 401 is the answer.
      manifestWith(basic("second-pw"), 401);
      const err = (await get(c).catch((e: unknown) => e)) as UpstreamError;
      expect(err.code).toBe("STATUS");
      expect(err.status).toBe(401);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a credential helper that cannot run fails the request with AUTH_FAILED naming it (a 502, never a pass)", async () => {
    const c = clientWith("{ helper: pullgate-test-absent }");
    manifestWith(undefined, 401);
    const err = (await get(c).catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).toBe(
      "credential helper docker-credential-pullgate-test-absent failed: docker-credential-pullgate-test-absent not found on PATH",
    );
    const oci = upstreamToOciError(err) as OciError;
    expect(oci.status).toBe(502);
    expect(oci.code).toBe("UNAVAILABLE");
    expect(oci.message).toMatch(/docker-credential-pullgate-test-absent/);
  });
});
