import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { get as httpGet, type IncomingMessage } from "node:http";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTinyImage, pushArtifact } from "../src/local/index.ts";
import { VerificationPool } from "../src/pull/verification-pool.ts";
import {
  createMemoryLogger,
  startTracing,
  type Tracing,
  tracingRequested,
  withSpan,
} from "../src/telemetry/index.ts";
import { compileSignerIdentity, parseTrustRoot } from "../src/verify/index.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type RecordingProxy, startRecordingProxy } from "./support/recording-proxy.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy, type TestKey } from "./support/signer.ts";
import { fixtureCase, PGI_ROOT, vectorText } from "./support/vectors.ts";

// Issue 12, "Telemetry": OpenTelemetry spans through the pull path. pullgate in process with the SDK
// started by startTracing (an OTLP env, its exporter swapped for an in-memory one through the test
// seam), in front of a real docker-registry, pulling an image signed with a key (legacy `.sig`).
// Between pullgate and the registry, a recording proxy (test/support/recording-proxy.ts) shows the
// headers the upstream receives, holds a blob's body on demand, and redirects to a second origin.

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
const AUTHORIZATION = "Bearer client-t0ken-never-in-a-span";

let registry: Registry;
let proxy: RecordingProxy;
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

async function pull(repository: string, tag = "v1", headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${pg.proxyUrl}/v2/${repository}/manifests/${tag}?token=query-s3cret`, {
    headers: { accept: ACCEPT, authorization: AUTHORIZATION, ...headers },
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

const SERVER = 1;
const serverSpans = () => exporter.getFinishedSpans().filter((s) => s.kind === SERVER);
/** traceparent of a sampled span (version 00). */
const traceparentOf = (s: ReadableSpan) => `00-${s.spanContext().traceId}-${idOf(s)}-01`;

/** A blob GET through pullgate (node's client, to see the body arrive): the response and its first bytes. */
function getBlob(path: string): Promise<{ res: IncomingMessage; first: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(`${pg.proxyUrl}${path}`, { headers: { authorization: AUTHORIZATION } }, (res) => {
      res.once("data", (first: Buffer) => {
        res.pause();
        resolve({ res, first });
      });
      res.once("error", reject);
    });
    req.once("error", reject);
  });
}

/** The rest of a paused response body. */
async function readRest(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const BIG = 1024 * 1024;
let bigBlob: string;
let pooledDigest: string;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startRecordingProxy(registry.url);
  writer = new RegistryWriter(registry.url);
  key = generateTestKey();
  digest = await pushImage("proj/app");
  await signLegacy({ writer, repository: "proj/app", digest, key });
  bigBlob = await writer.pushBlob("proj/app", randomBytes(BIG));
  pooledDigest = await pushImage("pooled/app");
  await signLegacy({ writer, repository: "pooled/app", digest: pooledDigest, key });
  const logger = createMemoryLogger();
  tracing = await startTracing({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SERVICE_NAME: "pullgate-test" }, logger, {
    exporter,
  });
  const keys = `keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]`;
  // A keyless signer beside the key: the project's judgements go through the worker pool.
  const keyless = `keyless: [{ name: ci, issuer: "https://token.actions.githubusercontent.com", subjectRegExp: ".*" }]`;
  pg = await startTestPullgate(
    `  - name: local\n    url: "${proxy.url}"\n    redirectOrigins: ["${proxy.otherUrl}"]\n`,
    `projects:\n  proj: { mode: enforce, ${keys} }\n  pooled: { mode: enforce, ${keys}, ${keyless} }\n`,
  );
});

afterAll(async () => {
  await pg?.stop();
  await tracing?.shutdown();
  await proxy?.close();
  await registry?.stop();
});

describe("OpenTelemetry spans through the pull path", () => {
  it("starts the SDK from the OTEL_* env", () => {
    expect(tracing).toBeDefined();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it("a cold enforce pull: request → routing, upstream manifest, decision (cache miss, signature lookup, judgement)", async () => {
    exporter.reset();
    proxy.requests.length = 0;
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
      "server.port": Number(new URL(proxy.url).port),
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

    // Each upstream request carried the traceparent of its own client span, and no other trace header.
    const upstreamCalls = all.filter((s) => s.name.startsWith("upstream "));
    const sent = proxy.requests.map((r) => r.headers.traceparent);
    expect(sent.length).toBe(upstreamCalls.length);
    expect([...sent].sort()).toEqual(upstreamCalls.map(traceparentOf).sort());
    expect(proxy.requests.find((r) => r.url === "/v2/proj/app/manifests/v1")?.headers.traceparent).toBe(
      traceparentOf(fetch),
    );
    for (const r of proxy.requests) {
      expect(r.headers.tracestate).toBeUndefined();
      expect(r.headers.baggage).toBeUndefined();
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

describe("W3C trace context", () => {
  const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const CALLER_SPAN = "00f067aa0ba902b7";

  it("continues the caller's trace: the server span is the child of the traceparent's span, upstream calls carry it on", async () => {
    const repo = "proj/continued";
    const d = await pushImage(repo);
    await signLegacy({ writer, repository: repo, digest: d, key });
    exporter.reset();
    proxy.requests.length = 0;
    const traceparent = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;
    expect(await pull(repo, "v1", { traceparent, tracestate: "vendor=opaque" })).toBe(200);
    const [server, ...others] = serverSpans();
    expect(others).toEqual([]);
    expect(server?.name).toBe("GET /v2/{name}/manifests/{reference}");
    expect(server?.parentSpanContext).toMatchObject({
      traceId: CALLER_TRACE,
      spanId: CALLER_SPAN,
      isRemote: true,
    });
    const all = exporter.getFinishedSpans();
    for (const span of all) expect(span.spanContext().traceId).toBe(CALLER_TRACE);
    const manifestCall = only(
      all.filter((s) => s.attributes["url.path"] === `/v2/${repo}/manifests/v1`),
      "upstream GET manifest",
    );
    const upstream = proxy.requests.find((r) => r.url === `/v2/${repo}/manifests/v1`);
    expect(upstream?.headers.traceparent).toBe(traceparentOf(manifestCall));
    expect(upstream?.headers.tracestate).toBe("vendor=opaque");
    expect(proxy.requests.length).toBeGreaterThan(1);
    for (const r of proxy.requests) expect(r.headers.traceparent).toMatch(new RegExp(`^00-${CALLER_TRACE}-`));
  });

  it.each([
    ["not hex", "00-zz000000000000000000000000000000-00f067aa0ba902b7-01"],
    ["an all-zero trace id", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`],
    ["an all-zero span id", `00-4bf92f3577b34da6a3ce929d0e0e4736-${"0".repeat(16)}-01`],
    ["version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ["garbage", "hello"],
    ["too long a trace id", "00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01"],
  ])("ignores a malformed traceparent (%s): a trace of its own, no error", async (_, traceparent) => {
    exporter.reset();
    expect(await pull("proj/app", "v1", { traceparent })).toBe(200);
    const { all, root } = requestSpans();
    expect(root.attributes["http.response.status_code"]).toBe(200);
    expect(root.spanContext().traceId).not.toBe(CALLER_TRACE);
    for (const span of all) expect(span.spanContext().traceId).toBe(root.spanContext().traceId);
  });

  it("a redirect to another origin is followed without pullgate's trace context (nor the client's credentials)", async () => {
    const image = createTinyImage("redirected.txt", "followed to another origin\n");
    await pushArtifact(writer, "proj/redirected", "v1", image);
    const path = `/v2/proj/redirected/blobs/${image.layer.digest}`;
    proxy.redirect(path, `${proxy.otherUrl}${path}`);
    proxy.requests.length = 0;
    exporter.reset();
    const res = await fetch(`${pg.proxyUrl}${path}`, {
      headers: { authorization: AUTHORIZATION },
      signal: AbortSignal.timeout(20_000),
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.layer.bytes)).toBe(true);
    const [first, second, ...rest] = proxy.requests;
    expect(rest).toEqual([]);
    expect(first?.origin).toBe(proxy.url);
    expect(first?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(second?.origin).toBe(proxy.otherUrl);
    expect(second?.url).toBe(path);
    expect(second?.headers.traceparent).toBeUndefined();
    expect(second?.headers.tracestate).toBeUndefined();
    expect(second?.headers.authorization).toBeUndefined();
  });
});

describe("a streamed blob's server span", () => {
  const path = () => `/v2/proj/app/blobs/${bigBlob}`;

  it("stays open while the body streams and ends after its last byte, with the bytes written", async () => {
    exporter.reset();
    const held = proxy.hold(path(), BIG / 2);
    const { res, first } = await getBlob(path());
    expect(res.statusCode).toBe(200);
    await held.started;
    // The client has the headers and the first bytes; the upstream holds the rest: the request is not over.
    expect(exporter.getFinishedSpans().map((s) => s.name)).toContain("upstream GET blob");
    expect(serverSpans()).toEqual([]);
    held.release();
    const body = Buffer.concat([first, await readRest(res)]);
    expect(body.length).toBe(BIG);
    const server = await vi.waitFor(() => only(serverSpans(), "GET /v2/{name}/blobs/{digest}"), {
      timeout: 10_000,
    });
    expect(server.attributes).toMatchObject({
      "http.response.status_code": 200,
      "http.response.body.size": BIG,
      "oci.digest": bigBlob,
    });
    expect(server.attributes["pullgate.response.aborted"]).toBeUndefined();
    expect(server.status.code).not.toBe(2); // not ERROR
  });

  it("ends, marked aborted, when the client goes away mid-stream (and the upstream transfer is cut)", async () => {
    exporter.reset();
    const held = proxy.hold(path(), BIG / 2);
    const { res } = await getBlob(path());
    await held.started;
    expect(serverSpans()).toEqual([]);
    res.destroy();
    const server = await vi.waitFor(() => only(serverSpans(), "GET /v2/{name}/blobs/{digest}"), {
      timeout: 10_000,
    });
    expect(server.attributes["pullgate.response.aborted"]).toBe(true);
    expect(server.attributes["http.response.body.size"]).toBeLessThan(BIG);
    await held.cut;
  });
});

describe("worker pool spans", () => {
  it("a cold pull of a project with a keyless signer: pool wait, then pool judge, under the judgement", async () => {
    exporter.reset();
    expect(await pull("pooled/app")).toBe(200);
    const { all, root } = requestSpans();
    expect(root.attributes["oci.digest"]).toBe(pooledDigest);
    const verify = descendantsOf(all, root).filter((s) => s.name === "pullgate.verify");
    const onWorker = verify.filter((s) => s.attributes["pullgate.verify.thread"] === "worker");
    expect(onWorker.length).toBeGreaterThanOrEqual(1);
    const judged = onWorker.find((s) => s.attributes["pullgate.verify.status"] === "verified");
    if (!judged) throw new Error("no verified judgement on a worker");
    const under = childrenOf(all, judged);
    const wait = only(under, "pullgate.pool.wait");
    const judge = only(under, "pullgate.pool.judge");
    expect(wait.attributes["pullgate.pool.queued"]).toBeTypeOf("number");
    expect(judge.attributes["pullgate.pool.threads"]).toBeGreaterThanOrEqual(1);
    expect(judge.attributes["pullgate.verify.status"]).toBe("verified");
    // The wait ended (a thread took the task) before the judgement did.
    expect(all.indexOf(wait)).toBeLessThan(all.indexOf(judge));
    for (const s of onWorker)
      expect(childrenOf(all, s).map((c) => c.name)).toEqual(["pullgate.pool.wait", "pullgate.pool.judge"]);
  });

  it("a task's wait lasts until a thread takes it, also with an abort signal (all of pullgate's tasks have one)", async () => {
    const root = parseTrustRoot("pgi", vectorText(PGI_ROOT));
    const fixture = fixtureCase("dir-img-cosign-fulcio-rekor-valid");
    const identity = { name: "mitr", issuer: "https://github.com/login/oauth", subject: "mitr@redhat.com" };
    const input = {
      digest: fixture.digest ?? "",
      authorities: [
        { kind: "keyless" as const, name: "mitr", identity: compileSignerIdentity(identity), root },
      ],
      evidence: [fixture.evidence],
      signal: new AbortController().signal,
    };
    const pool = new VerificationPool({ threads: 1 });
    try {
      exporter.reset();
      await withSpan("test.judgements", {}, async () => {
        const judged = [pool.judge(input), pool.judge(input)];
        // A cold pool: no thread is up yet, so no task has stopped waiting.
        expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([]);
        const verdicts = await Promise.all(judged);
        expect(verdicts.map((v) => v.status)).toEqual(["verified", "verified"]);
      });
      const all = exporter.getFinishedSpans();
      const parent = only(all, "test.judgements");
      const under = childrenOf(all, parent);
      expect(under.filter((s) => s.name === "pullgate.pool.wait").length).toBe(2);
      expect(under.filter((s) => s.name === "pullgate.pool.judge").length).toBe(2);
      // Ends in order: the first task's wait (a thread is up), then the second's (the thread is free again).
      const ends = under.map((s) => s.name);
      expect(ends.indexOf("pullgate.pool.wait")).toBeLessThan(ends.indexOf("pullgate.pool.judge"));
      expect(ends.at(-1)).toBe("pullgate.pool.judge");
    } finally {
      await pool.close();
    }
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
      const sdk = loaded.filter((u) => /@opentelemetry\\/(sdk-trace|context-async-hooks|exporter-trace-otlp-http|resources|core)\\//.test(u));
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
