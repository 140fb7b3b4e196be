import { Readable } from "node:stream";
import { type Dispatcher, MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { Secret, type UpstreamCredentials } from "../config/index.ts";
import { UpstreamAuth } from "./auth.ts";
import { type CredentialSource, fixedCredentials } from "./credential-source.ts";
import { UpstreamError } from "./errors.ts";

const agent = new MockAgent();
agent.disableNetConnect();
afterEach(() => agent.assertNoPendingInterceptors());

function auth(now: () => number, origin = "https://reg.test") {
  return new UpstreamAuth({
    upstream: "reg",
    origin,
    credentials: fixedCredentials({ username: "u", password: new Secret("p") }),
    tokenRealms: ["https://auth.test", "http://auth.test"],
    dispatcher: agent,
    userAgent: "t",
    timeoutMs: 1000,
    now,
  });
}

describe("UpstreamAuth", () => {
  it("caches a token until shortly before expires_in, then forgets it", async () => {
    let t = 1_000_000;
    const a = auth(() => t);
    agent
      .get("https://auth.test")
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { access_token: "A", expires_in: 100 });
    const header = await a.answer('Bearer realm="https://auth.test/token",service="s"', "repository:x:pull");
    expect(header).toBe("Bearer A");
    expect(a.cached("repository:x:pull")).toBe("Bearer A");
    expect(a.cached("repository:y:pull")).toBeUndefined();
    t += 85_000; // 100 s token, renewed 10 s early
    expect(a.cached("repository:x:pull")).toBe("Bearer A");
    t += 6_000;
    expect(a.cached("repository:x:pull")).toBeUndefined();
  });

  it("defaults to 60 s when the token service gives no expires_in", async () => {
    let t = 0;
    const a = auth(() => t);
    agent
      .get("https://auth.test")
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "B" });
    await a.answer('Bearer realm="https://auth.test/token"', "s");
    t = 47_000;
    expect(a.cached("s")).toBe("Bearer B");
    t = 51_000;
    expect(a.cached("s")).toBeUndefined();
  });

  it("never sends credentials to a plain-HTTP realm of an HTTPS registry", async () => {
    const a = auth(() => 0);
    await expect(a.answer('Bearer realm="http://auth.test/token"', "s")).rejects.toMatchObject({
      code: "AUTH_FAILED",
    });
  });

  it("never fetches a token realm on an origin that is neither the upstream's nor configured", async () => {
    const a = auth(() => 0);
    for (const realm of ["https://evil.test/token", "http://127.0.0.1:5051/admin/v1/projects"]) {
      await expect(a.answer(`Bearer realm="${realm}"`, "s")).rejects.toMatchObject({
        code: "AUTH_FAILED",
        message: expect.stringMatching(/tokenRealms/),
      });
    }
    expect(a.tokenFetches).toBe(0);
  });

  it("cannot answer Basic without credentials", async () => {
    const a = new UpstreamAuth({
      upstream: "r",
      origin: "http://r",
      credentials: undefined,
      dispatcher: agent,
      userAgent: "t",
      timeoutMs: 1,
    });
    expect(await a.answer('Basic realm="x"', "s")).toBeUndefined();
  });

  it("shares one fetch between concurrent answers and drops the in-flight entry on success and failure", async () => {
    const a = auth(() => 0);
    const pool = agent.get("https://auth.test");
    pool.intercept({ path: /\/token/, method: "GET" }).reply(200, { token: "C" });
    const both = await Promise.all([
      a.answer('Bearer realm="https://auth.test/token"', "s1"),
      a.answer('Bearer realm="https://auth.test/token"', "s1"),
    ]);
    expect(both).toEqual(["Bearer C", "Bearer C"]);
    expect(a.tokenFetches).toBe(1);
    expect(a.inflight).toBe(0);
    pool.intercept({ path: /\/token/, method: "GET" }).reply(500, "no");
    await expect(a.answer('Bearer realm="https://auth.test/token"', "s2")).rejects.toMatchObject({
      code: "AUTH_FAILED",
    });
    expect(a.inflight).toBe(0);
  });
});

/** A token service answering every request at once, without sockets: `token` is the body's token. */
function tokenService(token: (path: string) => string): Dispatcher {
  const fake = {
    request: async (opts: Dispatcher.RequestOptions) => ({
      statusCode: 200,
      headers: {},
      body: Readable.from([Buffer.from(JSON.stringify({ token: token(opts.path), expires_in: 300 }))]),
    }),
  };
  return fake as unknown as Dispatcher;
}

function authWith(
  dispatcher: Dispatcher,
  extra: Partial<ConstructorParameters<typeof UpstreamAuth>[0]> = {},
) {
  return new UpstreamAuth({
    upstream: "reg",
    origin: "https://reg.test",
    credentials: undefined,
    tokenRealms: ["https://auth.test"],
    dispatcher,
    userAgent: "t",
    timeoutMs: 1000,
    now: () => 0,
    ...extra,
  });
}

const CHALLENGE = 'Bearer realm="https://auth.test/token",service="reg"';

describe("UpstreamAuth token cache under invented repository names", () => {
  it("40 000 invented scopes with 4 KB tokens: entries and bytes stay within the bounds", async () => {
    const a = authWith(tokenService((path) => `${path.length}-${"t".repeat(4_000)}`));
    const { maxEntries, maxBytes } = a.cacheUsage();
    expect(maxEntries).toBe(10_000);
    expect(maxBytes).toBe(16 * 1024 * 1024);
    let peakBytes = 0;
    let peakEntries = 0;
    const batch = 100;
    for (let i = 0; i < 40_000; i += batch) {
      const answers: Promise<string | undefined>[] = [];
      for (let j = i; j < i + batch; j++)
        answers.push(a.answer(CHALLENGE, `repository:proj/invented-${j}:pull`));
      await Promise.all(answers);
      const usage = a.cacheUsage();
      peakBytes = Math.max(peakBytes, usage.bytes);
      peakEntries = Math.max(peakEntries, usage.entries);
    }
    expect(a.tokenFetches).toBe(40_000);
    expect(peakBytes).toBeLessThanOrEqual(maxBytes);
    expect(peakEntries).toBeLessThanOrEqual(maxEntries);
    // ~8 KB an entry: the byte bound binds well before the entry bound (unbounded, this was ~330 MB).
    expect(a.cacheUsage().entries).toBeLessThan(2_100);
    expect(a.inflight).toBe(0);
    // The most recent scopes are still served from the cache; the first ones were evicted.
    expect(a.cached("repository:proj/invented-39999:pull")).toMatch(/^Bearer /);
    expect(a.cached("repository:proj/invented-0:pull")).toBeUndefined();
  });

  it("40 000 invented scopes with small tokens: the entry bound holds", async () => {
    const a = authWith(tokenService(() => "small"));
    for (let i = 0; i < 40_000; i++) await a.answer(CHALLENGE, `repository:proj/n${i}:pull`);
    expect(a.cacheUsage().entries).toBe(10_000);
    expect(a.cached("repository:proj/n39999:pull")).toBe("Bearer small");
    expect(a.cached("repository:proj/n29999:pull")).toBeUndefined();
  });

  it("uses a token bigger than 64 KiB once and never caches it", async () => {
    const a = authWith(tokenService(() => "x".repeat(100_000)));
    const header = await a.answer(CHALLENGE, "repository:proj/app:pull");
    expect(header).toHaveLength(100_007);
    expect(a.cached("repository:proj/app:pull")).toBeUndefined();
    expect(a.cacheUsage()).toMatchObject({ entries: 0, bytes: 0 });
    await a.answer(CHALLENGE, "repository:proj/app:pull");
    expect(a.tokenFetches).toBe(2);
  });
});

/** A login the test changes at will; counts what the auth layer asks of it. */
class ScriptedSource implements CredentialSource {
  readonly description = "scripted";
  current: UpstreamCredentials;
  /** What the next look (after invalidate) finds. */
  next: UpstreamCredentials | undefined;
  gets = 0;
  invalidations = 0;
  constructor(password: string) {
    this.current = login(password);
  }
  async get(): Promise<UpstreamCredentials> {
    this.gets++;
    return this.current;
  }
  invalidate(rejected?: UpstreamCredentials): void {
    if (rejected !== undefined && rejected !== this.current) return;
    this.invalidations++;
    if (this.next) this.current = this.next;
    this.next = undefined;
  }
}

const login = (password: string): UpstreamCredentials => ({
  username: "bot",
  password: new Secret(password),
});
const basicOf = (password: string) => `Basic ${Buffer.from(`bot:${password}`).toString("base64")}`;

/** A token service that accepts only `accepted` (Basic bot:<password>), counting what it was sent. */
function tokenServiceFor(accepted: () => string, seen: string[]): Dispatcher {
  const fake = {
    request: async (opts: Dispatcher.RequestOptions) => {
      const authorization = String((opts.headers as Record<string, string>).authorization);
      seen.push(authorization);
      const ok = authorization === basicOf(accepted());
      return {
        statusCode: ok ? 200 : 401,
        headers: {},
        body: Readable.from([Buffer.from(ok ? JSON.stringify({ token: `t-${seen.length}` }) : "no")]),
      };
    },
  };
  return fake as unknown as Dispatcher;
}

describe("UpstreamAuth with a login that changes", () => {
  it("drops the tokens obtained with the old login when the source gives a new one", async () => {
    const source = new ScriptedSource("one");
    let accepted = "one";
    const seen: string[] = [];
    const a = authWith(
      tokenServiceFor(() => accepted, seen),
      { credentials: source },
    );
    expect(await a.answer(CHALLENGE, "s1")).toBe("Bearer t-1");
    expect(a.cached("s1")).toBe("Bearer t-1");
    source.current = login("two");
    accepted = "two";
    expect(await a.answer(CHALLENGE, "s2")).toBe("Bearer t-2");
    expect(seen).toEqual([basicOf("one"), basicOf("two")]);
    expect(a.cached("s1")).toBeUndefined();
    expect(a.cached("s2")).toBe("Bearer t-2");
    expect(a.credentialChanges).toBe(1);
  });

  it("a token service refusing the login: the source looks again once, and a new login is tried once", async () => {
    const source = new ScriptedSource("old");
    source.next = login("new");
    const seen: string[] = [];
    const a = authWith(
      tokenServiceFor(() => "new", seen),
      { credentials: source },
    );
    expect(await a.answer(CHALLENGE, "s")).toBe("Bearer t-2");
    expect(seen).toEqual([basicOf("old"), basicOf("new")]);
    expect(source.invalidations).toBe(1);
  });

  it("the same login found again is not sent again: AUTH_FAILED after one token request", async () => {
    const source = new ScriptedSource("old");
    const seen: string[] = [];
    const a = authWith(
      tokenServiceFor(() => "other", seen),
      { credentials: source },
    );
    await expect(a.answer(CHALLENGE, "s")).rejects.toMatchObject({
      code: "AUTH_FAILED",
      message: "token service refused the credentials",
    });
    expect(seen).toHaveLength(1);
    expect(source.invalidations).toBe(1);
  });

  it("a token fetched while the login changed is used once, not cached", async () => {
    const source = new ScriptedSource("one");
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = {
      request: async () => {
        await gate;
        return { statusCode: 200, headers: {}, body: Readable.from([Buffer.from('{"token":"slow"}')]) };
      },
    } as unknown as Dispatcher;
    const a = authWith(slow, { credentials: source });
    const pending = a.answer(CHALLENGE, "s1");
    await new Promise((r) => setImmediate(r));
    source.current = login("two");
    // Another fetch sees the new login (and drops what the old one got).
    const other = a.answer(CHALLENGE, "s2");
    release();
    expect(await pending).toBe("Bearer slow");
    expect(await other).toBe("Bearer slow");
    expect(a.cached("s1")).toBeUndefined();
    expect(a.cached("s2")).toBe("Bearer slow");
  });

  it("Basic: sent at once after the first Basic challenge, made from the current login on every request", async () => {
    const source = new ScriptedSource("one");
    const a = authWith(
      tokenService(() => "unused"),
      { credentials: source },
    );
    expect(await a.authorization("s")).toBeUndefined();
    expect(await a.answer('Basic realm="r"', "s")).toBe(basicOf("one"));
    expect(await a.authorization("other-scope")).toBe(basicOf("one"));
    source.current = login("two");
    expect(await a.authorization("s")).toBe(basicOf("two"));
  });

  it("Basic refused: the source looks again once; a new login is the answer, the same one is not", async () => {
    const source = new ScriptedSource("one");
    source.next = login("two");
    const a = authWith(
      tokenService(() => "unused"),
      { credentials: source },
    );
    expect(await a.answer('Basic realm="r"', "s", undefined, basicOf("one"))).toBe(basicOf("two"));
    expect(source.invalidations).toBe(1);
    // Refused again, and the source has nothing newer: no retry with what was just refused.
    expect(await a.answer('Basic realm="r"', "s", undefined, basicOf("two"))).toBeUndefined();
    expect(source.invalidations).toBe(2);
    // A header made from an older login than the current one: the current one, without asking again.
    expect(await a.answer('Basic realm="r"', "s", undefined, basicOf("zero"))).toBe(basicOf("two"));
    expect(source.invalidations).toBe(2);
  });

  it("a source that fails makes the request fail with its AUTH_FAILED", async () => {
    const failing: CredentialSource = {
      description: "credential helper docker-credential-x",
      get: () =>
        Promise.reject(
          new UpstreamError("AUTH_FAILED", "reg", "credential helper docker-credential-x failed: exit 1"),
        ),
      invalidate: () => {},
    };
    const a = authWith(
      tokenService(() => "unused"),
      { credentials: failing },
    );
    await expect(a.answer(CHALLENGE, "s")).rejects.toMatchObject({
      code: "AUTH_FAILED",
      message: "credential helper docker-credential-x failed: exit 1",
    });
    expect(a.tokenFetches).toBe(0);
    await expect(a.answer('Basic realm="r"', "s")).rejects.toMatchObject({ code: "AUTH_FAILED" });
    await expect(a.authorization("s")).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });

  it("a caller that gives up does not wait for the login", async () => {
    const never: CredentialSource = {
      description: "slow",
      get: () => new Promise(() => {}),
      invalidate: () => {},
    };
    const a = authWith(
      tokenService(() => "unused"),
      { credentials: never },
    );
    await expect(a.answer(CHALLENGE, "s", AbortSignal.timeout(20))).rejects.toMatchObject({
      code: "ABORTED",
    });
  });
});
