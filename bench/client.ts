import { createHash } from "node:crypto";
import { Client, Pool } from "undici";
import { BUNDLE_V03_MEDIA_TYPE } from "../src/verify/index.ts";
import type { SmallImage } from "./images.ts";
import { CONTAINERD_ACCEPT } from "./scenario.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function newClient(baseUrl: string): Client {
  return new Client(baseUrl, {
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
}

async function get(
  client: Client,
  path: string,
  method: "GET" | "HEAD",
  accept: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const res = await client.request({ path, method, headers: { accept } });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

export type PullsResult = {
  /** Per pull: from sending the HEAD to the last byte of the last request. */
  latenciesMs: number[];
  requests: number;
  durationS: number;
  /** CPU (user+system) of this process over the pulls, seconds (the client's share). */
  cpuS: number;
};

/**
 * Pulls `images` one after the other the way containerd does — HEAD by tag, then GET by the digest the HEAD
 * answered — over one keep-alive connection, checking every answer (status, digest, bytes).
 *
 * With `lookup`, the client also makes, straight after the GET, the requests of a signature lookup itself
 * (what pullgate does upstream for a first pull): cosign's `.sig` manifest then its payload blob, and alongside
 * on a second connection the referrers API then the referrers tag schema (both 404 on distribution 2.8). That is
 * the bench's "direct + minimum upstream round trips" (without the signature check's CPU).
 * `preconnect` sends an untimed GET /v2/ on each connection first.
 */
export async function sequentialPulls(opts: {
  baseUrl: string;
  images: readonly SmallImage[];
  lookup?: boolean;
  preconnect?: boolean;
}): Promise<PullsResult> {
  const main = newClient(opts.baseUrl);
  const side = opts.lookup ? newClient(opts.baseUrl) : undefined;
  const fail = (image: SmallImage, what: string): never => {
    throw new Error(`${opts.baseUrl}: pull of ${image.repository}:${image.tag}: ${what}`);
  };
  try {
    if (opts.preconnect !== false) {
      for (const c of [main, side]) if (c) await get(c, "/v2/", "GET", "*/*");
    }
    const latenciesMs: number[] = [];
    let requests = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const image of opts.images) {
      if (image.tag === undefined) throw new Error(`${image.digest} has no tag to pull by`);
      const start = performance.now();
      const head = await get(
        main,
        `/v2/${image.repository}/manifests/${image.tag}`,
        "HEAD",
        CONTAINERD_ACCEPT,
      );
      if (head.status !== 200) fail(image, `HEAD answered ${head.status}`);
      if (head.headers["docker-content-digest"] !== image.digest)
        fail(image, "HEAD: wrong Docker-Content-Digest");
      const m = await get(
        main,
        `/v2/${image.repository}/manifests/${image.digest}`,
        "GET",
        CONTAINERD_ACCEPT,
      );
      if (m.status !== 200)
        fail(image, `GET by digest answered ${m.status}: ${m.body.toString().slice(0, 200)}`);
      if (sha256(m.body) !== image.digest) fail(image, "GET by digest: wrong manifest bytes");
      requests += 2;
      if (side) {
        const hex = image.digest.slice("sha256:".length);
        const legacy = (async () => {
          const sig = await get(
            main,
            `/v2/${image.repository}/manifests/sha256-${hex}.sig`,
            "GET",
            OCI_MANIFEST,
          );
          if (sig.status !== 200) fail(image, `.sig answered ${sig.status}`);
          const layers = (JSON.parse(sig.body.toString()) as { layers: Array<{ digest: string }> }).layers;
          for (const layer of layers) {
            const blob = await get(main, `/v2/${image.repository}/blobs/${layer.digest}`, "GET", "*/*");
            if (blob.status !== 200) fail(image, `payload blob answered ${blob.status}`);
          }
          return 1 + layers.length;
        })();
        const referrers = (async () => {
          const q = `?artifactType=${encodeURIComponent(BUNDLE_V03_MEDIA_TYPE)}`;
          const r = await get(
            side,
            `/v2/${image.repository}/referrers/${image.digest}${q}`,
            "GET",
            OCI_INDEX,
          );
          if (r.status !== 404)
            fail(image, `referrers answered ${r.status} (expected 404 from distribution 2.8)`);
          const t = await get(side, `/v2/${image.repository}/manifests/sha256-${hex}`, "GET", OCI_INDEX);
          if (t.status !== 404) fail(image, `referrers tag schema answered ${t.status}`);
          return 2;
        })();
        const [a, b] = await Promise.all([legacy, referrers]);
        requests += a + b;
      }
      latenciesMs.push(performance.now() - start);
    }
    const durationS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { latenciesMs, requests, durationS, cpuS: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await Promise.all([main, side].map((c) => c?.close().catch(() => undefined)));
  }
}

export type HerdResult = {
  /** Per request that completed (any status): from dispatch to the last body byte. */
  latenciesMs: number[];
  statuses: Record<string, number>;
  /** Requests that failed without an answer, by error message. */
  errors: Record<string, number>;
  /** Answers with status 200 whose bytes were not the manifest. */
  wrongBytes: number;
  /** From the first dispatch to the last answer. */
  wallMs: number;
  cpuS: number;
};

/**
 * `n` GETs of one manifest at once, each on its own new connection (a pool of `n` sockets), as `n` nodes
 * pulling the same image at the same moment would. Connection setup is part of each latency.
 */
export async function herd(opts: {
  baseUrl: string;
  path: string;
  digest: string;
  n: number;
  timeoutMs?: number;
}): Promise<HerdResult> {
  const timeout = opts.timeoutMs ?? 60_000;
  const pool = new Pool(opts.baseUrl, {
    connections: opts.n,
    pipelining: 1,
    connectTimeout: timeout,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const latenciesMs: number[] = [];
  let wrongBytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let last = t0;
  try {
    await Promise.all(
      Array.from({ length: opts.n }, async () => {
        const start = performance.now();
        try {
          const res = await pool.request({
            path: opts.path,
            method: "GET",
            headers: { accept: CONTAINERD_ACCEPT },
          });
          const body = Buffer.from(await res.body.arrayBuffer());
          const end = performance.now();
          latenciesMs.push(end - start);
          if (end > last) last = end;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode === 200 && sha256(body) !== opts.digest) wrongBytes++;
        } catch (err) {
          const key = (err as { code?: string }).code ?? (err as Error).message;
          errors[key] = (errors[key] ?? 0) + 1;
        }
      }),
    );
  } finally {
    await pool.close().catch(() => undefined);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    latenciesMs,
    statuses,
    errors,
    wrongBytes,
    wallMs: last - t0,
    cpuS: (cpu.user + cpu.system) / 1e6,
  };
}
