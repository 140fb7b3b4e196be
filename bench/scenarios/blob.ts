import { memoryOf, resetPeakRss, sampleRss } from "../proc.ts";
import {
  DIRECT,
  type Env,
  expect,
  NGINX,
  PULLGATE_ENFORCE,
  type Scenario,
  type Target,
} from "../scenario.ts";
import { digestBody, REPOSITORY } from "../servers.ts";
import { runWrk } from "../tools.ts";

const MIB = 1024 * 1024;

/** The processes whose memory is reported for a target: pullgate, or nginx's workers. */
function proxyPids(target: Target, env: Env): number[] {
  if (target.name === PULLGATE_ENFORCE) return [env.enforce().proc.pid];
  if (target.name === NGINX) return env.processes.get(NGINX)?.() ?? [];
  return [];
}

export function blobScenario(): Scenario {
  const rss = new Map<string, { reset: boolean; sampler: ReturnType<typeof sampleRss> }>();
  return {
    id: "blob",
    section: "4. Blob",
    title: "200 MiB blob GET, 1 connection",
    about:
      "Throughput of one ~200 MiB layer blob (a tar holding a 200 MiB incompressible file, gzip level 0: the exact " +
      "size is in the header above) " +
      "over one connection, and the peak resident memory of the proxy while it streams: pullgate-enforce's VmHWM " +
      "(its peak RSS, reset with /proc/<pid>/clear_refs before each run; if the kernel refuses, the largest VmRSS " +
      "sampled every 50 ms), and for nginx the sum of its workers' peaks. MB = 10^6 bytes. nginx buffers the " +
      "response to a temporary file in the bench's temp dir once its memory buffers are full (proxy_buffering " +
      "on, the default).",
    method: "wrk -t1 -c1, GET /v2/proj/app/blobs/<layer digest>",
    runLength: (s) => `${s} s runs`,
    targets: (env) => [env.targets[DIRECT], env.targets[PULLGATE_ENFORCE], env.targets[NGINX]],
    metrics: [
      { key: "mibPerS", label: "MiB/s", decimals: 0 },
      { key: "p50Ms", label: "p50 ms per blob", decimals: 0 },
      { key: "p99Ms", label: "p99 ms per blob", decimals: 0 },
      { key: "peakRssMB", label: "proxy peak RSS MB", decimals: 1 },
    ],
    cpu: "GiB",
    warmupS: 2,
    verify: async (target, env) => {
      const path = `/v2/${REPOSITORY}/blobs/${env.image.blobDigest}`;
      const res = await fetch(`${target.baseUrl}${path}`, { signal: AbortSignal.timeout(120_000) });
      expect(res.status === 200, target, `GET ${path} answered ${res.status}`);
      expect(
        res.headers.get("content-length") === String(env.image.blobSize),
        target,
        "wrong blob Content-Length",
      );
      const { digest, length } = await digestBody(res);
      expect(
        length === env.image.blobSize,
        target,
        `blob body has ${length} bytes, not ${env.image.blobSize}`,
      );
      expect(digest === env.image.blobDigest, target, `blob body hashes to ${digest}`);
    },
    beforeRun: async (target, env) => {
      const pids = proxyPids(target, env);
      if (pids.length === 0) return;
      let reset = true;
      for (const pid of pids) reset = (await resetPeakRss(pid)) && reset;
      rss.set(target.name, { reset, sampler: sampleRss(pids) });
    },
    measure: async (target, durationS, env) => {
      const { blobSize, blobDigest } = env.image;
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
      const values: Record<string, number> = {
        mibPerS: load.bytes / MIB / load.durationS,
        p50Ms: load.p50Ms,
        p99Ms: load.p99Ms,
      };
      const mem = rss.get(target.name);
      let raw: Record<string, unknown> = { wrk: load.raw };
      if (mem) {
        rss.delete(target.name);
        const sampledMax = await mem.sampler.stop();
        let hwm = 0;
        for (const pid of proxyPids(target, env)) hwm += (await memoryOf(pid)).hwm;
        values.peakRssMB = (mem.reset ? Math.max(hwm, sampledMax) : sampledMax) / 1e6;
        raw = { ...raw, vmHwmBytes: hwm, sampledMaxRssBytes: sampledMax, peakReset: mem.reset };
      }
      return {
        values,
        units: load.bytes,
        durationS: load.durationS,
        clientCpuS: load.clientCpuTicks / env.ticks,
        raw,
      };
    },
  };
}
