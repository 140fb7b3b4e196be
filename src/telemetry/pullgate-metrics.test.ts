import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createPullgateMetrics,
  OTHER_PROJECT,
  projectLabel,
  statusClass,
  upstreamKindOf,
} from "./pullgate-metrics.ts";

/** Every family /metrics serves (the README's table lists the same, checked below). */
const FAMILIES = [
  "pullgate_requests_total",
  "pullgate_decisions_total",
  "pullgate_verdict_cache_hits_total",
  "pullgate_verdict_cache_misses_total",
  "pullgate_manifest_cache_hits_total",
  "pullgate_signature_lookups_total",
  "pullgate_signature_lookup_requests_total",
  "pullgate_single_flight_joins_total",
  "pullgate_upstream_requests_total",
  "pullgate_upstream_connections_total",
  "pullgate_upstream_responses_total",
  "pullgate_upstream_request_duration_seconds",
  "pullgate_streamed_bytes_total",
  "pullgate_verification_duration_seconds",
  "pullgate_worker_judgements_total",
  "pullgate_redis_rejected_entries_total",
  "pullgate_worker_pool_tasks",
  "pullgate_worker_pool_threads",
  "pullgate_worker_pool_utilization",
  "pullgate_redis_up",
  "pullgate_manifest_cache_bytes",
  "pullgate_manifest_cache_entries",
  "pullgate_verdict_cache_entries",
  "pullgate_alerts_sent_total",
  "pullgate_alerts_dropped_total",
  "pullgate_alert_delivery_retries_total",
  "pullgate_audit_file_records_total",
  "pullgate_audit_file_errors_total",
  "process_resident_memory_bytes",
];

const typesOf = (text: string) =>
  new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));

describe("projectLabel", () => {
  it("keeps the name of a project configured in the file or overridden at run time", () => {
    expect(projectLabel({ project: "team-a", source: "config" })).toBe("team-a");
    expect(projectLabel({ project: "team-b", source: "runtime" })).toBe("team-b");
  });

  it("folds every other project into one label value", () => {
    expect(projectLabel({ project: "whatever-someone-pulled", source: "defaults" })).toBe(OTHER_PROJECT);
    expect(OTHER_PROJECT).toBe("_other");
  });

  it("keeps the decisions family bounded however many unknown projects are pulled", async () => {
    const m = createPullgateMetrics();
    for (let i = 0; i < 1_000; i++) {
      const project = projectLabel({ project: `random-${i}`, source: "defaults" });
      m.decisions.inc({ project, outcome: "deny", reason: "NO_SIGNATURE" });
    }
    m.decisions.inc({
      project: projectLabel({ project: "team-a", source: "config" }),
      outcome: "allow",
      reason: "none",
    });
    const series = (await m.render()).split("\n").filter((l) => l.startsWith("pullgate_decisions_total{"));
    expect(series).toEqual([
      'pullgate_decisions_total{project="_other",outcome="deny",reason="NO_SIGNATURE"} 1000',
      'pullgate_decisions_total{project="team-a",outcome="allow",reason="none"} 1',
    ]);
  });
});

describe("createPullgateMetrics", () => {
  it("renders every declared family with its type, and nothing undeclared", async () => {
    const text = await createPullgateMetrics().render();
    const types = typesOf(text);
    expect([...types.keys()].sort()).toEqual([...FAMILIES].sort());
    expect(types.get("pullgate_upstream_request_duration_seconds")).toBe("histogram");
    expect(types.get("pullgate_verification_duration_seconds")).toBe("histogram");
    expect(types.get("pullgate_redis_up")).toBe("gauge");
    expect(types.get("pullgate_requests_total")).toBe("counter");
  });

  it("reads the alert webhooks' and the audit file's totals when scraped", async () => {
    const m = createPullgateMetrics();
    const totals = { alertsSent: 3, dropped: 1, alertsFailed: 2, retries: 4 };
    m.observe({
      manifestCacheBytes: () => 0,
      manifestCacheEntries: () => 0,
      verdictCacheEntries: () => 0,
      alerts: () => ({ security: totals }),
      auditFile: () => ({ written: 7, dropped: 0, errors: 1 }),
    });
    const text = await m.render();
    expect(text).toMatch(/^pullgate_alerts_sent_total\{webhook="security"\} 3$/m);
    expect(text).toMatch(/^pullgate_alerts_dropped_total\{webhook="security",why="queue_full"\} 1$/m);
    expect(text).toMatch(/^pullgate_alerts_dropped_total\{webhook="security",why="given_up"\} 2$/m);
    expect(text).toMatch(/^pullgate_alert_delivery_retries_total\{webhook="security"\} 4$/m);
    expect(text).toMatch(/^pullgate_audit_file_records_total\{result="written"\} 7$/m);
    expect(text).toMatch(/^pullgate_audit_file_errors_total 1$/m);
    totals.alertsSent = 5;
    expect(await m.render()).toMatch(/^pullgate_alerts_sent_total\{webhook="security"\} 5$/m);
  });

  it("shows each known series from zero, so the first alert dropped is an increase() can see", async () => {
    const m = createPullgateMetrics();
    m.observe({
      manifestCacheBytes: () => 0,
      manifestCacheEntries: () => 0,
      verdictCacheEntries: () => 0,
      alerts: () => ({ security: { alertsSent: 0, dropped: 0, alertsFailed: 0, retries: 0 } }),
      auditFile: () => ({ written: 0, dropped: 0, errors: 0 }),
    });
    const text = await m.render();
    expect(text).toMatch(/^pullgate_alerts_sent_total\{webhook="security"\} 0$/m);
    expect(text).toMatch(/^pullgate_alerts_dropped_total\{webhook="security",why="queue_full"\} 0$/m);
    expect(text).toMatch(/^pullgate_alert_delivery_retries_total\{webhook="security"\} 0$/m);
    expect(text).toMatch(/^pullgate_audit_file_records_total\{result="dropped"\} 0$/m);
    expect(text).toMatch(/^pullgate_audit_file_errors_total 0$/m);
  });

  it("uses a registry of its own: two instances never share a series", async () => {
    const a = createPullgateMetrics();
    const b = createPullgateMetrics();
    a.signatureLookups.inc();
    a.signatureLookups.inc(undefined, 2);
    expect(a.signatureLookups.value()).toBe(3);
    expect(b.signatureLookups.value()).toBe(0);
    expect(await a.render()).toMatch(/^pullgate_signature_lookups_total 3$/m);
    expect(await b.render()).toMatch(/^pullgate_signature_lookups_total 0$/m);
  });

  it("value() sums the series whose labels include the ones asked for", () => {
    const m = createPullgateMetrics();
    m.decisions.inc({ project: "a", outcome: "deny", reason: "NO_SIGNATURE" });
    m.decisions.inc({ project: "b", outcome: "deny", reason: "SIGNATURE_UNAVAILABLE" });
    m.decisions.inc({ project: "a", outcome: "allow", reason: "none" });
    expect(m.decisions.value({ outcome: "deny" })).toBe(2);
    expect(m.decisions.value({ project: "a" })).toBe(2);
    expect(m.decisions.value()).toBe(3);
    m.redisRejectedEntries.inc({ kind: "verdict" });
    expect(m.redisRejectedEntries.value({ kind: "policy" })).toBe(0);
    expect(m.redisRejectedEntries.value({ kind: "verdict" })).toBe(1);
  });

  it("renders histograms with their labels", async () => {
    const m = createPullgateMetrics();
    m.upstreamSeconds.observe({ upstream: "hub", kind: "manifest" }, 0.02);
    m.verificationSeconds.observe({ signer: "keyless", thread: "worker" }, 0.007);
    const text = await m.render();
    expect(text).toMatch(
      /^pullgate_upstream_request_duration_seconds_bucket\{le="0\.025",upstream="hub",kind="manifest"\} 1$/m,
    );
    expect(text).toMatch(
      /^pullgate_upstream_request_duration_seconds_count\{upstream="hub",kind="manifest"\} 1$/m,
    );
    expect(text).toMatch(
      /^pullgate_verification_duration_seconds_count\{signer="keyless",thread="worker"\} 1$/m,
    );
  });

  it("reads the gauges' sources when scraped", async () => {
    const m = createPullgateMetrics();
    let up = true;
    m.redisUp.track("cache", () => up);
    m.redisUp.track("policy-subscriber", () => false);
    m.workerPool.observe(() => ({ waiting: 3, running: 2, threads: 2, utilization: 0.5 }));
    m.observe({
      manifestCacheBytes: () => 1234,
      manifestCacheEntries: () => 5,
      verdictCacheEntries: () => 7,
    });
    let text = await m.render();
    expect(text).toMatch(/^pullgate_redis_up\{connection="cache"\} 1$/m);
    expect(text).toMatch(/^pullgate_redis_up\{connection="policy-subscriber"\} 0$/m);
    expect(text).toMatch(/^pullgate_worker_pool_tasks\{state="waiting"\} 3$/m);
    expect(text).toMatch(/^pullgate_worker_pool_tasks\{state="running"\} 2$/m);
    expect(text).toMatch(/^pullgate_worker_pool_utilization 0\.5$/m);
    expect(text).toMatch(/^pullgate_manifest_cache_bytes 1234$/m);
    expect(text).toMatch(/^pullgate_verdict_cache_entries 7$/m);
    up = false;
    text = await m.render();
    expect(text).toMatch(/^pullgate_redis_up\{connection="cache"\} 0$/m);
  });

  it("serves the Prometheus text content type", () => {
    expect(createPullgateMetrics().contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe("label values", () => {
  it("status classes", () => {
    expect([200, 206, 307, 401, 404, 429, 502, 503].map(statusClass)).toEqual([
      "2xx",
      "2xx",
      "3xx",
      "4xx",
      "4xx",
      "4xx",
      "5xx",
      "5xx",
    ]);
    expect(statusClass(0)).toBe("other");
  });

  it("upstream kinds come from the path's shape, never its names or digests", () => {
    expect(upstreamKindOf("/v2/", undefined)).toBe("base");
    expect(upstreamKindOf("/v2/p/app/manifests/v1", undefined)).toBe("manifest");
    expect(upstreamKindOf("/v2/p/app/blobs/sha256:ab", false)).toBe("blob");
    expect(upstreamKindOf("/v2/p/app/referrers/sha256:ab", undefined)).toBe("referrers");
    expect(upstreamKindOf("/v2/p/app/tags/list?n=1", undefined)).toBe("tags");
    expect(upstreamKindOf("/v2/p/app/manifests/sha256-ab.sig", true)).toBe("signature");
  });
});

describe("README", () => {
  it("documents every family in its metrics table", () => {
    const readme = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Metrics"));
    const documented = new Set([...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
    for (const family of FAMILIES) expect(documented, family).toContain(family);
  });
});
