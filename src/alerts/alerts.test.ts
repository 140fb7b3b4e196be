import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError, parseConfig } from "../config/index.ts";
import { createMemoryLogger, type ManifestDecisionRecord } from "../telemetry/index.ts";
import { createAlerts } from "./alerts.ts";
import type { AlertPayload } from "./formats.ts";
import type { WebhookTransport } from "./transport.ts";

const T0 = Date.parse("2026-03-01T12:00:00Z");

function config(alertsYaml: string, env: Record<string, string> = {}) {
  return parseConfig(
    `upstreams:\n  - name: local\n    url: "http://127.0.0.1:5000"\nalerts:\n${alertsYaml}`,
    { source: "test", baseDir: process.cwd(), env },
  );
}

function problemsOf(alertsYaml: string, env: Record<string, string> = {}): readonly string[] {
  try {
    config(alertsYaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

function decision(extra: Partial<ManifestDecisionRecord>): ManifestDecisionRecord {
  return {
    project: "proj",
    repository: "proj/app",
    upstream: "local",
    reference: "v1",
    digest: "sha256:aa",
    method: "GET",
    mode: "enforce",
    outcome: "deny",
    reason: "NO_SIGNATURE",
    durationMs: 1,
    ...extra,
  };
}

function fakeTransport() {
  const posts: Array<{ url: string; headers: Record<string, string>; payload: Record<string, unknown> }> = [];
  const transport: WebhookTransport = {
    async post(req) {
      posts.push({ url: req.url, headers: { ...req.headers }, payload: JSON.parse(req.body) });
      return { ok: true, status: 204 };
    },
    close: vi.fn(async () => {}),
  };
  return { posts, transport };
}

describe("alerts config", () => {
  it("resolves defaults, urlEnv and headersEnv (as secrets)", () => {
    const c = config(
      `  webhooks:\n    - name: team\n      urlEnv: HOOK\n      headersEnv: { Authorization: TOKEN }\n`,
      { HOOK: "https://hooks.example.com/T0/B0/SECRET", TOKEN: "Bearer t0k" },
    );
    const w = c.alerts.webhooks[0];
    expect(w).toMatchObject({
      name: "team",
      format: "json",
      projects: undefined,
      events: ["deny", "would-deny", "unavailable"],
      batchMs: 10_000,
      minIntervalMs: 30_000,
      maxBatchSize: 20,
      queueSize: 1_000,
      timeoutMs: 5_000,
      giveUpMs: 600_000,
    });
    expect(w?.url.reveal()).toBe("https://hooks.example.com/T0/B0/SECRET");
    expect(w?.headers.Authorization?.reveal()).toBe("Bearer t0k");
    expect(JSON.stringify(c)).not.toContain("SECRET");
    expect(JSON.stringify(c)).not.toContain("t0k");
    expect(c.alerts.unavailable).toEqual({ threshold: 5, windowMs: 60_000 });
    expect(c.alerts.shutdownFlushMs).toBe(5_000);
  });

  it("no alerts section: no webhooks", () => {
    const c = parseConfig(`upstreams:\n  - name: local\n    url: "http://127.0.0.1:5000"\n`, {
      source: "test",
      baseDir: process.cwd(),
      env: {},
    });
    expect(c.alerts.webhooks).toEqual([]);
  });

  it("takes https anywhere, http only to loopback or with allowHttp", () => {
    const ok = (url: string, extra = "") =>
      problemsOf(`  webhooks:\n    - { name: a, url: ${JSON.stringify(url)}${extra} }\n`);
    expect(ok("https://hooks.slack.com/services/T0/B0/X")).toEqual([]);
    expect(ok("http://127.0.0.1:9000/hook")).toEqual([]);
    expect(ok("http://[::1]:9000/hook")).toEqual([]);
    expect(ok("http://localhost:9000/hook")).toEqual([]);
    expect(ok("http://alertmanager.monitoring:9000/hook", ", allowHttp: true")).toEqual([]);
    expect(ok("http://alertmanager.monitoring:9000/hook")).toEqual([
      "alerts.webhooks[0].url: must be https:// (http:// only to a loopback address, or with allowHttp: true)",
    ]);
    expect(ok("ftp://example.com/x")).toEqual(["alerts.webhooks[0].url: must be https://"]);
    expect(ok("https://user:pw@example.com/x")[0]).toContain("must not carry a username or password");
    expect(ok("not a url")).toEqual(["alerts.webhooks[0].url: not a valid URL"]);
  });

  it("never quotes a URL in a problem", () => {
    const problems = problemsOf(`  webhooks:\n    - { name: a, urlEnv: HOOK }\n`, {
      HOOK: "http://hooks.internal/SECRET-PATH",
    });
    expect(problems).toHaveLength(1);
    expect(problems.join()).not.toContain("SECRET");
  });

  it("reports every problem: names, url/urlEnv, env, headers, events, bounds", () => {
    const problems = problemsOf(
      [
        "  webhooks:",
        "    - { name: a, url: 'https://x.example/1', headersEnv: { Host: H, X-Token: MISSING } }",
        "    - { name: a, urlEnv: NOPE }",
        "    - { name: b }",
        "    - { name: c, url: 'https://x.example/1', events: [deny, deny] }",
        "    - { name: d, url: 'https://x.example/1', events: [denied], batchSeconds: -1, format: teams }",
      ].join("\n"),
      { H: "x" },
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        "alerts.webhooks[2]: give exactly one of url or urlEnv",
        expect.stringMatching(/^alerts\.webhooks\[3\]\.events: each event once/),
        expect.stringMatching(/^alerts\.webhooks\[4\]\.events\[0\]:/),
        expect.stringMatching(/^alerts\.webhooks\[4\]\.batchSeconds:/),
        expect.stringMatching(/^alerts\.webhooks\[4\]\.format:/),
      ]),
    );
    // The schema stops before resolution: the second stage is checked on its own.
    expect(
      problemsOf(
        [
          "  webhooks:",
          "    - { name: a, url: 'https://x.example/1', headersEnv: { Host: H, X-Token: MISSING } }",
          "    - { name: a, urlEnv: NOPE }",
        ].join("\n"),
        { H: "x" },
      ),
    ).toEqual([
      "alerts.webhooks[0].headersEnv.Host: not a header to set",
      "alerts.webhooks[0].headersEnv.X-Token: environment variable MISSING is not set",
      'alerts.webhooks[1].name: duplicate webhook name "a"',
      "alerts.webhooks[1].urlEnv: environment variable NOPE is not set",
    ]);
  });
});

describe("createAlerts", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("registers nothing without webhooks", () => {
    expect(createAlerts(config("  webhooks: []\n").alerts, { logger: createMemoryLogger() })).toBeUndefined();
  });

  it("alerts on deny and would-deny, not on allow, exempt or off; filters by project and event", async () => {
    const { posts, transport } = fakeTransport();
    const c = config(
      [
        "  webhooks:",
        "    - { name: all, url: 'https://a.example/hook', batchSeconds: 1 }",
        "    - { name: proj-deny, url: 'https://b.example/hook', format: slack, projects: [proj], events: [deny], batchSeconds: 1 }",
        "",
      ].join("\n"),
    );
    const alerts = createAlerts(c.alerts, { logger: createMemoryLogger(), transport });
    if (!alerts) throw new Error("no alerts");
    for (let i = 0; i < 50; i++) alerts.sink.decision?.(decision({}));
    alerts.sink.decision?.(decision({ outcome: "would-deny", mode: "audit", project: "aud" }));
    alerts.sink.decision?.(decision({ outcome: "would-deny", mode: "audit" }));
    alerts.sink.decision?.(decision({ outcome: "allow", reason: undefined }));
    alerts.sink.decision?.(decision({ outcome: "exempt", reason: undefined }));
    alerts.sink.decision?.(decision({ outcome: "off", reason: undefined }));
    alerts.sink.decision?.(decision({ project: "other", repository: "other/x" }));
    await vi.advanceTimersByTimeAsync(1_000);
    const all = posts.find((p) => p.url === "https://a.example/hook")?.payload as unknown as AlertPayload;
    expect(all.alerts.map((a) => [a.event, a.project, a.count])).toEqual([
      ["deny", "proj", 50],
      ["would-deny", "aud", 1],
      ["would-deny", "proj", 1],
      ["deny", "other", 1],
    ]);
    const slack = posts.find((p) => p.url === "https://b.example/hook")?.payload as { text: string };
    expect(slack.text.split("\n")).toHaveLength(2);
    expect(slack.text).toContain("50 pulls");
    await alerts.stop();
    expect(transport.close).toHaveBeenCalled();
  });

  it("SIGNATURE_UNAVAILABLE alerts only as a burst per (project, upstream), whatever the outcome", async () => {
    const { posts, transport } = fakeTransport();
    const c = config(
      "  unavailable: { threshold: 3, windowSeconds: 60 }\n  webhooks:\n    - { name: all, url: 'https://a.example/h', batchSeconds: 5 }\n",
    );
    const alerts = createAlerts(c.alerts, { logger: createMemoryLogger(), transport });
    const unavailable = (extra: Partial<ManifestDecisionRecord>) =>
      alerts?.sink.decision?.(decision({ reason: "SIGNATURE_UNAVAILABLE", ...extra }));
    unavailable({ repository: "proj/a", digest: "sha256:1" });
    unavailable({ repository: "proj/b", digest: "sha256:2", outcome: "allow" });
    unavailable({ project: "aud", repository: "aud/x", outcome: "would-deny" });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(posts).toEqual([]); // two of proj, one of aud: below the threshold
    unavailable({ repository: "proj/c", digest: "sha256:3" });
    for (let i = 0; i < 4; i++) unavailable({ repository: `proj/d${i}` });
    await vi.advanceTimersByTimeAsync(5_000);
    const payload = posts[0]?.payload as unknown as AlertPayload;
    expect(payload.alerts).toEqual([
      {
        event: "unavailable",
        project: "proj",
        upstream: "local",
        reason: "SIGNATURE_UNAVAILABLE",
        count: 7,
        firstSeen: new Date(T0).toISOString(),
        lastSeen: new Date(T0 + 10_000).toISOString(),
      },
    ]);
    await alerts?.stop();
  });

  it("a flood of pulls under made-up project names is one alert, and cannot push out a configured project's", async () => {
    const { posts, transport } = fakeTransport();
    const c = config(
      "  unavailable: { threshold: 3, windowSeconds: 60 }\n  webhooks:\n    - { name: all, url: 'https://a.example/h', batchSeconds: 1, queueSize: 10 }\n",
    );
    const alerts = createAlerts(c.alerts, {
      logger: createMemoryLogger(),
      transport,
      knownProject: (project) => project === "proj",
    });
    alerts?.sink.decision?.(decision({}));
    for (let i = 0; i < 1_000; i++)
      alerts?.sink.decision?.(decision({ project: `x${i}`, repository: `x${i}/img`, digest: `sha256:${i}` }));
    // Lookup failures under made-up names count together: a burst, not 1,000 counters below the threshold.
    for (let i = 0; i < 3; i++)
      alerts?.sink.decision?.(
        decision({ project: `y${i}`, repository: `y${i}/img`, reason: "SIGNATURE_UNAVAILABLE" }),
      );
    await vi.advanceTimersByTimeAsync(1_000);
    const payload = posts[0]?.payload as unknown as AlertPayload;
    expect(payload.dropped).toBe(0);
    expect(payload.alerts.map((a) => [a.event, a.project, a.repository, a.example, a.count])).toEqual([
      ["deny", "proj", "proj/app", undefined, 1],
      ["deny", "_other", undefined, "x0/img@sha256:0", 1_000],
      ["unavailable", "_other", undefined, undefined, 3],
    ]);
    await alerts?.stop();
  });

  it("sends the configured headers, and logs the webhook's name, never its URL", async () => {
    const posts: Array<Record<string, string>> = [];
    const transport: WebhookTransport = {
      async post(req) {
        posts.push({ ...req.headers });
        return { ok: false, retryable: false, status: 403 };
      },
      async close() {},
    };
    const logger = createMemoryLogger();
    const c = config("  webhooks:\n    - { name: team, urlEnv: HOOK, headersEnv: { X-Token: TOKEN } }\n", {
      HOOK: "https://hooks.example.com/SECRET-PATH",
      TOKEN: "tok-123",
    });
    const alerts = createAlerts(c.alerts, { logger, transport });
    alerts?.sink.decision?.(decision({}));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(posts).toEqual([{ "X-Token": "tok-123" }]);
    expect(logger.records.map((r) => r.event)).toEqual(["alerts on", "alert delivery given up"]);
    expect(logger.records[1]).toMatchObject({ webhook: "team", status: 403 });
    const logged = JSON.stringify(logger.records);
    expect(logged).not.toContain("SECRET-PATH");
    expect(logged).not.toContain("hooks.example.com");
    expect(logged).not.toContain("tok-123");
    await alerts?.stop();
  });
});
