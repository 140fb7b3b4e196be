import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTinyImage, pushArtifact } from "../src/local/index.ts";
import { createMemoryLogger, startTracing, type Tracing, tracingRequested } from "../src/telemetry/index.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy, type TestKey } from "./support/signer.ts";

// Issue 12, "Telemetry": OpenTelemetry spans through the pull path. pullgate in process with the SDK
// started by startTracing (an OTLP env, its exporter swapped for an in-memory one through the test
// seam), in front of a real docker-registry, pulling an image signed with a key (legacy `.sig`).

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
const AUTHORIZATION = "Bearer client-t0ken-never-in-a-span";

let registry: Registry;
let writer: RegistryWriter;
let key: TestKey;
let pg: TestPullgate;
let tracing: Tracing | undefined;
let digest: string;
const exporter = new InMemorySpanExporter();

let imageCount = 0;

async function pushImage(repository: string, tag = "v1"): Promise<string> {
  const image = createTinyImage("hello.txt", `tracing image ${++imageCount} ${repository}\n`);
  await pushArtifact(writer, repository, tag, image);
  return image.manifestDigest;
}

async function pull(repository: string, tag = "v1"): Promise<number> {
  const res = await fetch(`${pg.proxyUrl}/v2/${repository}/manifests/${tag}?token=query-s3cret`, {
    headers: { accept: ACCEPT, authorization: AUTHORIZATION },
    signal: AbortSignal.timeout(20_000),
  });
  await res.arrayBuffer();
  return res.status;
}

const idOf = (s: ReadableSpan) => s.spanContext().spanId;
const childrenOf = (spans: readonly ReadableSpan[], parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === idOf(parent));
function descendantsOf(spans: readonly ReadableSpan[], parent: ReadableSpan): ReadableSpan[] {
  return childrenOf(spans, parent).flatMap((c) => [c, ...descendantsOf(spans, c)]);
}
function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0] as ReadableSpan;
}

/** The finished spans of the one request made since the last reset (the server span ends last). */
function requestSpans(): { all: ReadableSpan[]; root: ReadableSpan } {
  const all = exporter.getFinishedSpans();
  const roots = all.filter((s) => s.parentSpanContext === undefined);
  expect(roots.map((s) => s.name)).toEqual(["GET /v2/{name}/manifests/{reference}"]);
  return { all, root: roots[0] as ReadableSpan };
}

beforeAll(async () => {
  registry = await startRegistry();
  writer = new RegistryWriter(registry.url);
  key = generateTestKey();
  digest = await pushImage("proj/app");
  await signLegacy({ writer, repository: "proj/app", digest, key });
  const logger = createMemoryLogger();
  tracing = await startTracing({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SERVICE_NAME: "pullgate-test" }, logger, {
    exporter,
  });
  const keys = `keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]`;
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"\n`,
    `projects:\n  proj: { mode: enforce, ${keys} }\n`,
  );
});

afterAll(async () => {
  await pg?.stop();
  await tracing?.shutdown();
  await registry?.stop();
});

describe("OpenTelemetry spans through the pull path", () => {
  it("starts the SDK from the OTEL_* env", () => {
    expect(tracing).toBeDefined();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it("a cold enforce pull: request → routing, upstream manifest, decision (cache miss, signature lookup, judgement)", async () => {
    exporter.reset();
    expect(await pull("proj/app")).toBe(200);
    const { all, root } = requestSpans();
    expect(root.kind).toBe(1); // SERVER
    expect(root.attributes).toMatchObject({
      "http.request.method": "GET",
      "http.response.status_code": 200,
      "url.path": "/v2/proj/app/manifests/v1",
      "server.address": "127.0.0.1",
      "oci.repository": "proj/app",
      "oci.digest": digest,
    });
    expect(root.resource.attributes["service.name"]).toBe("pullgate-test");

    const top = childrenOf(all, root);
    only(top, "pullgate.route");
    const manifest = only(top, "pullgate.manifest");
    expect(manifest.attributes).toMatchObject({
      "oci.repository": "proj/app",
      "oci.digest": digest,
      "pullgate.project": "proj",
      "pullgate.outcome": "allow",
      "pullgate.cache.tier": "verified",
    });
    const underManifest = childrenOf(all, manifest);
    const fetch = only(underManifest, "upstream GET manifest");
    expect(fetch.kind).toBe(2); // CLIENT
    expect(fetch.attributes).toMatchObject({
      "pullgate.upstream.pool": "api",
      "url.path": "/v2/proj/app/manifests/v1",
      "http.response.status_code": 200,
      "server.address": "127.0.0.1",
      "server.port": Number(new URL(registry.url).port),
    });

    const decide = only(underManifest, "pullgate.decide");
    expect(decide.attributes).toMatchObject({
      "oci.repository": "proj/app",
      "oci.digest": digest,
      "pullgate.project": "proj",
      "pullgate.outcome": "allow",
      "pullgate.cache.tier": "verified",
    });
    const underDecide = childrenOf(all, decide);
    expect(only(underDecide, "pullgate.cache.lookup").attributes["pullgate.cache.tier"]).toBe("miss");
    const lookup = only(underDecide, "pullgate.signature.lookup");
    const lookupCalls = childrenOf(all, lookup).filter((s) => s.name.startsWith("upstream "));
    const paths = lookupCalls.map((s) => s.attributes["url.path"]);
    const sigTag = `sha256-${digest.slice("sha256:".length)}.sig`;
    expect(paths).toContain(`/v2/proj/app/manifests/${sigTag}`);
    expect(paths).toContain(`/v2/proj/app/referrers/${digest}`);
    for (const call of lookupCalls) expect(call.attributes["pullgate.upstream.pool"]).toBe("lookup");
    const verify = descendantsOf(all, decide).filter((s) => s.name === "pullgate.verify");
    expect(verify.length).toBeGreaterThanOrEqual(1);
    expect(verify.some((s) => s.attributes["pullgate.verify.status"] === "verified")).toBe(true);

    // No secret and no query string anywhere.
    for (const span of all) {
      const text = JSON.stringify(span.attributes);
      expect(text).not.toContain("client-t0ken");
      expect(text).not.toContain("query-s3cret");
      expect(text.toLowerCase()).not.toContain("authorization");
    }
  });

  it("a warm pull: a memory cache hit and no upstream signature calls", async () => {
    exporter.reset();
    expect(await pull("proj/app")).toBe(200);
    const { all, root } = requestSpans();
    expect(root.attributes["http.response.status_code"]).toBe(200);
    const decide = only(descendantsOf(all, root), "pullgate.decide");
    expect(decide.attributes["pullgate.outcome"]).toBe("allow");
    expect(decide.attributes["pullgate.cache.tier"]).toBe("memory");
    const hit = only(childrenOf(all, decide), "pullgate.cache.lookup");
    expect(hit.attributes["pullgate.cache.tier"]).toBe("memory");
    expect(all.filter((s) => s.name === "pullgate.signature.lookup")).toEqual([]);
    expect(all.filter((s) => s.attributes["pullgate.upstream.pool"] === "lookup")).toEqual([]);
  });
});

describe("without OTEL_* configuration", () => {
  it("tracingRequested follows the OTEL_* variables; OTEL_SDK_DISABLED wins", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" })).toBe(
      true,
    );
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" })).toBe(
      false,
    );
    expect(tracingRequested({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" })).toBe(false);
  });

  it("startTracing returns undefined and loads no SDK module (a child process watching its imports)", async () => {
    const script = `
      import { registerHooks } from "node:module";
      const loaded = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
      const { startTracing } = await import(${JSON.stringify(fileURLToPath(new URL("../src/telemetry/otel-sdk.ts", import.meta.url)))});
      const tracing = await startTracing(JSON.parse(process.env.TRACING_ENV), { log() {} });
      const sdk = loaded.filter((u) => /@opentelemetry\\/(sdk-trace|context-async-hooks|exporter-trace-otlp-http|resources)\\//.test(u));
      console.log(JSON.stringify({ started: tracing !== undefined, sdk: sdk.length }));
      await tracing?.shutdown();
    `;
    const run = async (env: Record<string, string>) => {
      const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
        env: { PATH: process.env.PATH ?? "", TRACING_ENV: JSON.stringify(env) },
        cwd: fileURLToPath(new URL("..", import.meta.url)),
      });
      return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { started: boolean; sdk: number };
    };
    expect(await run({})).toEqual({ started: false, sdk: 0 });
    expect(await run({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" })).toEqual({
      started: false,
      sdk: 0,
    });
    // The control: configured, the same watch sees the SDK load.
    const configured = await run({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:9/v1/traces" });
    expect(configured.started).toBe(true);
    expect(configured.sdk).toBeGreaterThan(0);
  });
});
