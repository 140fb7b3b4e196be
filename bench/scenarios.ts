import { join } from "node:path";
import { type BenchImage, digestBody, REPOSITORY, TAG } from "./servers.ts";
import { type LoadResult, runAbHead, runWrk } from "./tools.ts";

/** A base URL the scenarios are run against, and the sampled processes that serve its requests. */
export type Target = {
  name: string;
  baseUrl: string;
  /** Names of the sampled processes (see run.ts) on this target's request path, for the CPU columns. */
  processes: string[];
  /** A log that gets one `"event":"access"` line per request; runs fail if it stays empty. */
  accessLogFile?: string;
};

export type Metric = {
  key: string;
  label: string;
  decimals: number;
};

export type ScenarioContext = {
  image: BenchImage;
  /** Scratch dir for tool output files. */
  dir: string;
};

export type Measurement = {
  load: LoadResult;
  /** Values for the scenario's metrics, by Metric.key. */
  values: Record<string, number>;
};

export type Scenario = {
  id: string;
  title: string;
  /** How the load is generated, for RESULTS.md (the duration is appended). */
  method: string;
  metrics: Metric[];
  /** CPU columns: µs per request, or CPU-seconds per GiB of response bodies. */
  cpuPer: "request" | "GiB";
  /** One request checked in full before any load, so a broken target fails fast instead of benchmarking errors. */
  verify(target: Target, ctx: ScenarioContext): Promise<void>;
  measure(target: Target, durationS: number, ctx: ScenarioContext): Promise<Measurement>;
};

/** containerd's Accept list for manifests. */
export const CONTAINERD_ACCEPT =
  "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

const MANIFEST_PATH = `/v2/${REPOSITORY}/manifests/${TAG}`;
const MIB = 1024 * 1024;

const rateMetrics: Metric[] = [
  { key: "reqPerS", label: "req/s", decimals: 0 },
  { key: "p50Ms", label: "p50 ms", decimals: 2 },
  { key: "p99Ms", label: "p99 ms", decimals: 2 },
];

function rateValues(load: LoadResult): Record<string, number> {
  return { reqPerS: load.requests / load.durationS, p50Ms: load.p50Ms, p99Ms: load.p99Ms };
}

function expect(cond: boolean, target: Target, what: string): void {
  if (!cond) throw new Error(`${target.name} (${target.baseUrl}): ${what}`);
}

async function verifyManifest(target: Target, ctx: ScenarioContext, method: "GET" | "HEAD"): Promise<void> {
  const res = await fetch(`${target.baseUrl}${MANIFEST_PATH}`, {
    method,
    headers: { accept: CONTAINERD_ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const { image } = ctx;
  expect(res.status === 200, target, `${method} ${MANIFEST_PATH} answered ${res.status}`);
  expect(res.headers.get("content-type") === image.manifestMediaType, target, "wrong manifest Content-Type");
  expect(
    res.headers.get("docker-content-digest") === image.manifestDigest,
    target,
    "wrong Docker-Content-Digest",
  );
  expect(
    res.headers.get("content-length") === String(image.manifestBytes.length),
    target,
    "wrong manifest Content-Length",
  );
  if (method === "GET")
    expect(body.equals(image.manifestBytes), target, "manifest bytes differ from the pushed ones");
}

function manifestGet(connections: number): Scenario {
  return {
    id: `manifest-get-c${connections}`,
    title: `Manifest GET by tag, ${connections} connection${connections === 1 ? "" : "s"}`,
    method: `wrk -t1 -c${connections}, GET ${MANIFEST_PATH} with containerd's Accept list`,
    metrics: rateMetrics,
    cpuPer: "request",
    verify: (target, ctx) => verifyManifest(target, ctx, "GET"),
    measure: async (target, durationS) => {
      const load = await runWrk({
        url: `${target.baseUrl}${MANIFEST_PATH}`,
        connections,
        durationS,
        headers: [`Accept: ${CONTAINERD_ACCEPT}`],
      });
      return { load, values: rateValues(load) };
    },
  };
}

function manifestHead(connections: number): Scenario {
  return {
    id: `manifest-head-c${connections}`,
    title: `Manifest HEAD by tag, ${connections} connections`,
    method: `ab -k -i -c ${connections}, HEAD ${MANIFEST_PATH} with containerd's Accept list`,
    metrics: rateMetrics,
    cpuPer: "request",
    verify: (target, ctx) => verifyManifest(target, ctx, "HEAD"),
    measure: async (target, durationS, ctx) => {
      const load = await runAbHead({
        url: `${target.baseUrl}${MANIFEST_PATH}`,
        connections,
        durationS,
        headers: [`Accept: ${CONTAINERD_ACCEPT}`],
        csvFile: join(ctx.dir, "ab-percentiles.csv"),
      });
      return { load, values: rateValues(load) };
    },
  };
}

function blobGet(): Scenario {
  return {
    id: "blob-get-c1",
    title: "50 MiB blob GET, 1 connection",
    method: "wrk -t1 -c1, GET /v2/proj/app/blobs/<layer digest> (50 MiB, incompressible)",
    metrics: [
      { key: "mibPerS", label: "MiB/s", decimals: 0 },
      { key: "p50Ms", label: "p50 ms", decimals: 1 },
      { key: "p99Ms", label: "p99 ms", decimals: 1 },
    ],
    cpuPer: "GiB",
    verify: async (target, ctx) => {
      const path = `/v2/${REPOSITORY}/blobs/${ctx.image.blobDigest}`;
      const res = await fetch(`${target.baseUrl}${path}`, { signal: AbortSignal.timeout(60_000) });
      expect(res.status === 200, target, `GET ${path} answered ${res.status}`);
      expect(
        res.headers.get("content-length") === String(ctx.image.blobSize),
        target,
        "wrong blob Content-Length",
      );
      const { digest, length } = await digestBody(res);
      expect(
        length === ctx.image.blobSize,
        target,
        `blob body has ${length} bytes, not ${ctx.image.blobSize}`,
      );
      expect(digest === ctx.image.blobDigest, target, `blob body hashes to ${digest}`);
    },
    measure: async (target, durationS, ctx) => {
      const { blobSize, blobDigest } = ctx.image;
      const load = await runWrk({
        url: `${target.baseUrl}/v2/${REPOSITORY}/blobs/${blobDigest}`,
        connections: 1,
        durationS,
      });
      // wrk completes a response only once Content-Length body bytes were read; its byte counter also holds
      // the headers and the one response still in flight when the run ended (one connection).
      const headerAllowance = 4096;
      expect(
        load.bytes >= load.requests * blobSize &&
          load.bytes <= (load.requests + 1) * (blobSize + headerAllowance),
        target,
        `wrk read ${load.bytes} bytes for ${load.requests} blobs of ${blobSize} bytes`,
      );
      return {
        load,
        values: { mibPerS: load.bytes / MIB / load.durationS, p50Ms: load.p50Ms, p99Ms: load.p99Ms },
      };
    },
  };
}

/** The scenarios, in run order. Each is run against every target. */
export function scenarios(): Scenario[] {
  return [manifestGet(8), manifestGet(1), manifestHead(8), blobGet()];
}
