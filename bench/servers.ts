import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DockerRegistryOptions,
  freePort,
  type ManagedProcess,
  run,
  startDockerRegistry,
  startProcess,
  waitFor,
} from "../src/local/index.ts";
import { createImage, pushImage } from "../test/support/oci-images.ts";
import { statFields } from "./proc.ts";

export const REPOSITORY = "proj/app";
export const TAG = "v1";
/** The layer of the bench image: the blob scenario's blob. */
export const LAYER_SIZE = 200 * 1024 * 1024;

export type Server = {
  /** "http://127.0.0.1:PORT" */
  url: string;
  proc: ManagedProcess;
  /** File the server logs to (for pullgate: the access log; for a registry with accessLog, its access log). */
  logFile: string;
};

export type RegistryOptions = Pick<
  DockerRegistryOptions,
  "storageDir" | "inMemory" | "proxyRemoteUrl" | "accessLog" | "name"
>;

/**
 * docker-registry (distribution 2.8) with error-level logs and the access log disabled, so that its own
 * logging does not dominate what is measured, and the in-memory blob descriptor cache of the packaged config.
 * `logFile` is the access log when there is one.
 */
export async function startQuietRegistry(dir: string, opts: RegistryOptions = {}): Promise<Server> {
  const registry = await startDockerRegistry({ dir, ...opts, logLevel: "error", blobDescriptorCache: true });
  const proc = registry.currentProcess();
  if (proc === undefined) throw new Error(`${opts.name ?? "docker-registry"} is not running`);
  return { url: registry.url, proc, logFile: registry.accessLogFile ?? registry.logFile };
}

export type BenchImage = {
  manifestDigest: string;
  manifestBytes: Buffer;
  manifestMediaType: string;
  blobDigest: string;
  blobSize: number;
};

/** One image with a single 200 MiB (incompressible, gzip level 0) layer, pushed as proj/app:v1 with skopeo. */
export async function pushBenchImage(layoutDir: string, registryUrl: string): Promise<BenchImage> {
  const image = await createImage({
    dir: layoutDir,
    tag: TAG,
    layers: [{ size: LAYER_SIZE, seed: "pullgate-bench" }],
  });
  await pushImage({ layoutDir, tag: TAG, dest: `${new URL(registryUrl).host}/${REPOSITORY}:${TAG}` });
  const blobDigest = image.layerDigests[0];
  const blobSize = image.layerSizes[0];
  if (blobDigest === undefined || blobSize === undefined) throw new Error("image without a layer");
  return {
    manifestDigest: image.manifestDigest,
    manifestBytes: image.manifestBytes,
    manifestMediaType: image.manifestMediaType,
    blobDigest,
    blobSize,
  };
}

const PULLGATE_BIN = fileURLToPath(new URL("../bin/pullgate.js", import.meta.url));
/** The Redis HMAC key of every pullgate of one bench run (replicas sharing the Redis share it). */
const REDIS_HMAC_KEY = randomBytes(32).toString("hex");

export type PullgateOptions = {
  /** Process name in messages and the log/config file names; default "pullgate". */
  name?: string;
  /** "host:port" to listen on; default "127.0.0.1:0" (the kernel picks, read back from the log). */
  listen?: string;
  /** `projects:` of the config (default: none, so every project is off). */
  projects?: Record<string, unknown>;
  /** `trustedRoots:` of the config (Sigstore trusted roots by name, for keyless identities). */
  trustedRoots?: Record<string, { path: string }>;
  /** `redis: { url }` of the config, with the run's HMAC key (default: in-process cache only). */
  redisUrl?: string;
  /** Node options before the script (e.g. --inspect=127.0.0.1:PORT). */
  nodeArgs?: string[];
};

export type PullgateServer = Server & {
  name: string;
  /** The admin listener (health, /metrics), "http://127.0.0.1:PORT". */
  adminUrl: string;
};

/**
 * pullgate as in production (the container image's command: dist/, --max-semi-space-size=2): the CLI
 * (`pullgate serve --config FILE`) in its own Node process, access log
 * on, its stdout (the JSON log) going to a file. Ports are picked by the kernel (listen on :0) and read
 * back from the "listening" log line, unless `listen` fixes the proxy port (a restarted process keeps its
 * URL). Starting again in the same dir appends to the same log file.
 */
export async function startPullgateProcess(
  dir: string,
  upstreamUrl: string,
  opts: PullgateOptions = {},
): Promise<PullgateServer> {
  const name = opts.name ?? "pullgate";
  const configFile = join(dir, `${name}.yaml`);
  // YAML is a superset of JSON: values are written as JSON (the PEM keeps its newlines as \n escapes).
  const lines = [
    `listen: ${JSON.stringify(opts.listen ?? "127.0.0.1:0")}`,
    'admin: { listen: "127.0.0.1:0" }',
    "log: { access: true }",
    "shutdown: { drainTimeoutMs: 2000 }",
    "upstreams:",
    "  - name: local",
    `    url: "${upstreamUrl}"`,
    "    default: true",
  ];
  if (opts.redisUrl !== undefined)
    lines.push(`redis: { url: ${JSON.stringify(opts.redisUrl)}, hmacKeyEnv: PULLGATE_REDIS_HMAC_KEY }`);
  if (opts.trustedRoots !== undefined) lines.push(`trustedRoots: ${JSON.stringify(opts.trustedRoots)}`);
  if (opts.projects !== undefined) lines.push(`projects: ${JSON.stringify(opts.projects)}`);
  await writeFile(configFile, `${lines.join("\n")}\n`);
  const logFile = join(dir, `${name}.log`);
  // Only what this process writes counts (a restart appends to the file).
  const logOffset = await stat(logFile).then(
    (s) => s.size,
    () => 0,
  );
  let urls: { proxy: string; admin: string } | undefined;
  const proc = await startProcess({
    name,
    command: process.execPath,
    // As the container image runs it (Dockerfile ENTRYPOINT): compiled dist/, a 2 MB young generation.
    args: [
      "--max-semi-space-size=2",
      ...(opts.nodeArgs ?? []),
      PULLGATE_BIN,
      "serve",
      "--config",
      configFile,
    ],
    env: { ...process.env, PULLGATE_ENTRY: "dist", PULLGATE_REDIS_HMAC_KEY: REDIS_HMAC_KEY },
    logDir: dir,
    stdoutFile: logFile,
    ready: async () => {
      urls ??= listeningUrls((await readFile(logFile)).subarray(logOffset).toString("utf8"));
      if (urls === undefined) return false;
      const res = await fetch(`${urls.proxy}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  if (urls === undefined) throw new Error(`${name} did not log its listening address`);
  return { url: urls.proxy, adminUrl: urls.admin, proc, logFile, name };
}

/** The proxy and admin URLs of pullgate's "listening" log line, once it is there. */
export function listeningUrls(log: string): { proxy: string; admin: string } | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes('"listening"')) continue;
    try {
      const rec = JSON.parse(line) as { event?: unknown; proxy?: unknown; admin?: unknown };
      if (rec.event === "listening" && typeof rec.proxy === "string" && typeof rec.admin === "string")
        return { proxy: rec.proxy, admin: rec.admin };
    } catch {
      // partial line
    }
  }
  return undefined;
}

export type NginxServer = Server & {
  /** The worker processes (the master only supervises). */
  workerPids: number[];
  version: string;
};

/**
 * Debian's nginx as a plain reverse proxy in front of `upstreamUrl`: `worker_processes auto` (one per core),
 * HTTP/1.1 keep-alive to the upstream (`keepalive 64`), proxy_buffering left at its default (on), access log
 * off. Config, pid, temp files and the error log live in `dir`; the master runs in the foreground as the
 * current user (`daemon off`), and so do its workers (`user` = the current user when that is root).
 */
export async function startNginx(dir: string, upstreamUrl: string): Promise<NginxServer> {
  const port = await freePort();
  const upstream = new URL(upstreamUrl).host;
  const user = userInfo();
  const conf = [
    "worker_processes auto;",
    ...(user.uid === 0 ? ["user root root;"] : []),
    `pid ${join(dir, "nginx.pid")};`,
    `error_log ${join(dir, "nginx-error.log")} error;`,
    "events { worker_connections 4096; }",
    "http {",
    "  access_log off;",
    `  client_body_temp_path ${join(dir, "client_body")};`,
    `  proxy_temp_path ${join(dir, "proxy_temp")};`,
    `  fastcgi_temp_path ${join(dir, "fastcgi_temp")};`,
    `  uwsgi_temp_path ${join(dir, "uwsgi_temp")};`,
    `  scgi_temp_path ${join(dir, "scgi_temp")};`,
    // Clients keep their connection (nginx's default closes it after 1000 requests).
    "  keepalive_requests 1000000;",
    `  upstream registry { server ${upstream}; keepalive 64; keepalive_requests 1000000; }`,
    "  server {",
    `    listen 127.0.0.1:${port};`,
    "    location / {",
    "      proxy_pass http://registry;",
    "      proxy_http_version 1.1;",
    '      proxy_set_header Connection "";',
    "      proxy_set_header Host $http_host;",
    "    }",
    "  }",
    "}",
  ];
  const confFile = join(dir, "nginx.conf");
  await writeFile(confFile, `${conf.join("\n")}\n`);
  const url = `http://127.0.0.1:${port}`;
  const proc = await startProcess({
    name: "nginx",
    command: "nginx",
    args: ["-p", dir, "-c", confFile, "-e", join(dir, "nginx-error.log"), "-g", "daemon off;"],
    logDir: dir,
    ready: async () => {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  let workerPids: number[] = [];
  await waitFor(
    async () => {
      workerPids = await childPids(proc.pid);
      return workerPids.length > 0;
    },
    { description: "nginx workers" },
  );
  const version = await nginxVersion();
  return { url, proc, logFile: join(dir, "nginx-error.log"), workerPids, version };
}

async function nginxVersion(): Promise<string> {
  const r = await run("nginx", ["-v"], { timeoutMs: 10_000 });
  return (r.stderr.trim() || r.stdout.trim()).replace(/^nginx version:\s*/, "");
}

/** Pids whose parent is `pid` (from /proc/<pid>/stat). */
export async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(await readFile(`/proc/${entry}/stat`, "utf8"));
      if (Number(fields[1]) === pid) out.push(Number(entry)); // field 4: ppid
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** sha256 and length of a whole response body, read as a stream. */
export async function digestBody(res: Response): Promise<{ digest: string; length: number }> {
  const hash = createHash("sha256");
  let length = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      hash.update(chunk);
      length += chunk.byteLength;
    }
  }
  return { digest: `sha256:${hash.digest("hex")}`, length };
}
