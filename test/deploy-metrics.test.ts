import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";

// deploy/grafana and deploy/prometheus cannot drift from /metrics: a real pullgate is pulled through
// (an allow, a deny, a blob, a project that is not configured) and every metric name the dashboard's
// and the alert rules' PromQL use must be a family its admin listener serves.

const ROOT = resolve(import.meta.dirname, "..");
const DASHBOARD = join(ROOT, "deploy/grafana/pullgate-dashboard.json");
const ALERTS = join(ROOT, "deploy/prometheus/pullgate-alerts.yaml");

/** Metric names in a PromQL expression, read loosely; histogram series suffixes name their family. */
function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/\bpullgate_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ""));
}

function dashboardExprs(): string[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: Array<{ targets?: Array<{ expr?: string }> }>;
    templating?: { list: Array<{ definition?: string }> };
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
  for (const v of dashboard.templating?.list ?? []) if (v.definition) exprs.push(v.definition);
  return exprs;
}

function alertExprs(): string[] {
  const rules = parseYaml(readFileSync(ALERTS, "utf8")) as {
    groups: Array<{ rules: Array<{ alert?: string; expr: string }> }>;
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** Families (# TYPE lines) and the names of the samples present. */
function parseExposition(text: string) {
  const families = new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1] as string));
  const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  return { families, samples };
}

let work: string;
let registry: Registry;
let pg: TestPullgate;
let signed: ImageResult;
let unsigned: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("deploy-metrics-test");
  const layout = join(work, "layout");
  registry = await startRegistry();
  const key = generateTestKey();
  const image = async (tag: string, repo: string) => {
    const result = await createImage({ dir: layout, tag, layers: [{ size: 2048, seed: `dm-${tag}` }] });
    await pushImage({ layoutDir: layout, tag, dest: `${registry.host}/${repo}` });
    return result;
  };
  signed = await image("signed", "proj/signed:v1");
  unsigned = await image("unsigned", "proj/unsigned:v1");
  await image("elsewhere", "elsewhere/app:v1");
  await signLegacy({
    writer: new RegistryWriter(registry.url),
    repository: "proj/signed",
    digest: signed.manifestDigest,
    key,
  });
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"\n    default: true`,
    `projects:\n  proj:\n    mode: enforce\n    keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]\n`,
  );
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

async function get(path: string): Promise<number> {
  const res = await fetch(`${pg.proxyUrl}${path}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  await res.arrayBuffer();
  return res.status;
}

describe("deploy/ monitoring against /metrics", () => {
  it("the dashboard and the alert rules use only metrics a running pullgate serves", async () => {
    expect(await get("/v2/")).toBe(200);
    expect(await get("/v2/proj/signed/manifests/v1")).toBe(200);
    expect(await get("/v2/proj/signed/manifests/v1")).toBe(200);
    expect(await get(`/v2/proj/signed/blobs/${signed.layerDigests[0]}`)).toBe(200);
    expect(await get("/v2/proj/unsigned/manifests/v1")).toBe(403);
    expect(await get(`/v2/proj/unsigned/blobs/${unsigned.configDigest}`)).toBe(200);
    await get("/v2/elsewhere/app/manifests/v1");
    await get("/v2/proj/missing/manifests/v1");

    const res = await fetch(`${pg.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const { families, samples } = parseExposition(await res.text());

    const used = new Map<string, string>();
    for (const expr of dashboardExprs()) for (const n of metricNamesIn(expr)) used.set(n, "dashboard");
    for (const expr of alertExprs()) for (const n of metricNamesIn(expr)) used.set(n, "alert rules");
    // The parse found what the files are about (an empty set would pass trivially).
    expect(used.size).toBeGreaterThanOrEqual(10);
    for (const [name, where] of used) expect(families, `${name} (${where})`).toContain(name);

    // The pulls left samples where the panels and rules look; a digest or repository is never a label.
    const has = (re: RegExp) => samples.some((l) => re.test(l));
    expect(has(/^pullgate_decisions_total\{project="proj",outcome="allow",reason="none"\} [1-9]/)).toBe(true);
    expect(has(/^pullgate_decisions_total\{project="proj",outcome="deny",reason="[A-Z_]+"\} [1-9]/)).toBe(
      true,
    );
    expect(has(/^pullgate_decisions_total\{project="_other",/)).toBe(true);
    expect(has(/^pullgate_verdict_cache_hits_total\{tier="memory"\} [1-9]/)).toBe(true);
    expect(
      has(/^pullgate_upstream_request_duration_seconds_count\{upstream="local",kind="manifest"\} [1-9]/),
    ).toBe(true);
    expect(
      has(/^pullgate_upstream_request_duration_seconds_count\{upstream="local",kind="signature"\} [1-9]/),
    ).toBe(true);
    expect(
      has(/^pullgate_upstream_responses_total\{upstream="local",kind="manifest",status_class="4xx"\} [1-9]/),
    ).toBe(true);
    expect(
      has(/^pullgate_verification_duration_seconds_count\{signer="key",thread="in_process"\} [1-9]/),
    ).toBe(true);
    expect(has(/^pullgate_worker_pool_tasks\{state="waiting"\} 0/)).toBe(true);
    for (const line of samples) {
      expect(line).not.toMatch(/sha256|signed|unsigned|elsewhere/);
    }
  }, 60_000);

  it("reads metric names out of PromQL loosely", () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le) (rate(pullgate_upstream_request_duration_seconds_bucket{kind="blob"}[5m]))) / pullgate_redis_up',
      ),
    ).toEqual(["pullgate_upstream_request_duration_seconds", "pullgate_redis_up"]);
  });
});
