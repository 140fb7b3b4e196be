import { createHash } from "node:crypto";
import { Pool } from "undici";
import type { SmallImage } from "./images.ts";
import { CONTAINERD_ACCEPT } from "./scenario.ts";

export type DistinctPullsResult = {
  /** Pulls answered 200 twice with the right digest and bytes. */
  ok: number;
  /** Per successful pull: from sending the HEAD to the GET's last byte. */
  latenciesMs: number[];
  /** Failed pulls by what failed ("GET 403", "HEAD ECONNRESET", ...). */
  failures: Record<string, number>;
  /** The first few failure answers (status and body), to say why. */
  failureSamples: string[];
  /** `next()` ran out of images before `signal` said stop. */
  exhausted: boolean;
  /** From the start to the last answer. */
  wallMs: number;
  /** When the supply ran out, ms after the start (undefined if it did not). */
  exhaustedAtMs: number | undefined;
  /** CPU (user+system) of this process over the pulls, seconds. */
  cpuS: number;
};

const MAX_SAMPLES = 5;

/**
 * First pulls of distinct images, `concurrency` at a time (one keep-alive connection each), until `signal`
 * aborts or `next()` has none left: each the way containerd pulls, HEAD by tag then GET by the digest, both
 * checked. A pull in flight when `signal` aborts completes; failures are counted, not thrown.
 */
export async function distinctPulls(opts: {
  baseUrl: string;
  next(): SmallImage | undefined;
  concurrency: number;
  signal?: AbortSignal;
  timeoutMs?: number;
}): Promise<DistinctPullsResult> {
  const timeout = opts.timeoutMs ?? 60_000;
  const pool = new Pool(opts.baseUrl, {
    connections: opts.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connectTimeout: timeout,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  const result: DistinctPullsResult = {
    ok: 0,
    latenciesMs: [],
    failures: {},
    failureSamples: [],
    exhausted: false,
    wallMs: 0,
    exhaustedAtMs: undefined,
    cpuS: 0,
  };
  const fail = (key: string, sample: string) => {
    result.failures[key] = (result.failures[key] ?? 0) + 1;
    if (result.failureSamples.length < MAX_SAMPLES) result.failureSamples.push(sample);
  };
  const request = async (path: string, method: "GET" | "HEAD") => {
    const res = await pool.request({ path, method, headers: { accept: CONTAINERD_ACCEPT } });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  };
  const pullOne = async (image: SmallImage) => {
    const manifests = `/v2/${image.repository}/manifests`;
    const what = `${image.repository}:${image.tag}`;
    const head = await request(`${manifests}/${image.tag}`, "HEAD");
    if (head.status !== 200) return fail(`HEAD ${head.status}`, `HEAD ${what}: ${head.status}`);
    if (head.headers["docker-content-digest"] !== image.digest)
      return fail("HEAD wrong digest", `HEAD ${what}: ${head.headers["docker-content-digest"]}`);
    const get = await request(`${manifests}/${image.digest}`, "GET");
    if (get.status !== 200)
      return fail(`GET ${get.status}`, `GET ${what}: ${get.status} ${get.body.toString().slice(0, 300)}`);
    const digest = `sha256:${createHash("sha256").update(get.body).digest("hex")}`;
    if (digest !== image.digest) return fail("GET wrong bytes", `GET ${what}: bytes of ${digest}`);
    return true;
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let last = t0;
  const worker = async () => {
    while (!opts.signal?.aborted) {
      const image = opts.next();
      if (image === undefined) {
        result.exhausted = true;
        result.exhaustedAtMs ??= performance.now() - t0;
        return;
      }
      if (image.tag === undefined) throw new Error(`${image.digest} has no tag to pull by`);
      const start = performance.now();
      try {
        if ((await pullOne(image)) === true) {
          result.ok++;
          result.latenciesMs.push(performance.now() - start);
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? (err as Error).message;
        fail(`error ${code}`, `${image.repository}:${image.tag}: ${(err as Error).message}`);
      }
      last = Math.max(last, performance.now());
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    await pool.close().catch(() => undefined);
  }
  const cpu = process.cpuUsage(cpu0);
  result.wallMs = last - t0;
  result.cpuS = (cpu.user + cpu.system) / 1e6;
  return result;
}
