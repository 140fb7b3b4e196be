import { createHash } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createImage, pushImage } from "../test/support/oci-images.ts";
import { freePort } from "../test/support/ports.ts";
import { type ManagedProcess, startProcess } from "../test/support/process.ts";
import { listensOn } from "./proc.ts";

export const REPOSITORY = "proj/app";
export const TAG = "v1";
export const LAYER_SIZE = 50 * 1024 * 1024;

export type Server = {
  /** "http://127.0.0.1:PORT" */
  url: string;
  proc: ManagedProcess;
  /** File the server logs to (for pullgate: the access log). */
  logFile: string;
};

export type RegistryOptions = {
  /** Serve this storage root instead of `<dir>/storage` (a second registry process on the same images). */
  storageDir?: string;
  /** Write distribution's access log (one combined-log-format line per request) to the log file. */
  accessLog?: boolean;
  /** Process name in messages; default "docker-registry". */
  name?: string;
};

/**
 * docker-registry (distribution 2.8) with error-level logs and the access log disabled, so that its own
 * logging does not dominate what is measured, and the in-memory blob descriptor cache of the packaged config.
 */
export async function startQuietRegistry(dir: string, opts: RegistryOptions = {}): Promise<Server> {
  const storageDir = opts.storageDir ?? join(dir, "storage");
  await mkdir(storageDir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = {
    version: 0.1,
    log: { level: "error", formatter: "json", accesslog: { disabled: opts.accessLog !== true } },
    storage: {
      // As in Debian's packaged /etc/docker/registry/config.yml (and distribution's sample config).
      cache: { blobdescriptor: "inmemory" },
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: false },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: host, secret: "pullgate-bench" },
  };
  const configFile = join(dir, "config.yml");
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`); // YAML is a superset of JSON
  const logFile = join(dir, "registry.log");
  // distribution overrides config keys from REGISTRY_* variables: do not inherit any.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_")));
  const url = `http://${host}`;
  const name = opts.name ?? "docker-registry";
  const proc = await startProcess({
    name,
    command: "docker-registry",
    args: ["serve", configFile],
    env,
    logDir: dir,
    stdoutFile: logFile,
    ready: async () => {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  // Error-level logs do not say "listening on": make sure the server that answered is OUR process (another
  // process may have grabbed the port between freePort() and the bind).
  if (!(await listensOn(proc.pid, port))) {
    await proc.stop();
    throw new Error(`${name}: port ${port} is held by another process`);
  }
  return { url, proc, logFile };
}

export type BenchImage = {
  manifestDigest: string;
  manifestBytes: Buffer;
  manifestMediaType: string;
  blobDigest: string;
  blobSize: number;
};

/** One image with a single 50 MiB (incompressible, gzip level 0) layer, pushed as proj/app:v1. */
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

export type PullgateOptions = {
  /** Process name in messages and the log/config file names; default "pullgate". */
  name?: string;
  /** "host:port" to listen on; default "127.0.0.1:0" (the kernel picks, read back from the log). */
  listen?: string;
  /** `projects:` of the config (default: none, so every project is off). */
  projects?: Record<string, unknown>;
  /** `redis: { url }` of the config (default: in-process cache only). */
  redisUrl?: string;
};

/**
 * pullgate as in production: the CLI (`pullgate serve --config FILE`) in its own Node process, access log
 * on, its stdout (the JSON log) going to a file. Ports are picked by the kernel (listen on :0) and read
 * back from the "listening" log line, unless `listen` fixes the proxy port (a restarted process keeps its
 * URL). Starting again in the same dir appends to the same log file.
 */
export async function startPullgateProcess(
  dir: string,
  upstreamUrl: string,
  opts: PullgateOptions = {},
): Promise<Server> {
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
  if (opts.redisUrl !== undefined) lines.push(`redis: { url: ${JSON.stringify(opts.redisUrl)} }`);
  if (opts.projects !== undefined) lines.push(`projects: ${JSON.stringify(opts.projects)}`);
  await writeFile(configFile, `${lines.join("\n")}\n`);
  const logFile = join(dir, `${name}.log`);
  // Only what this process writes counts (a restart appends to the file).
  const logOffset = await stat(logFile).then(
    (s) => s.size,
    () => 0,
  );
  let proxyUrl: string | undefined;
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [PULLGATE_BIN, "serve", "--config", configFile],
    logDir: dir,
    stdoutFile: logFile,
    ready: async () => {
      proxyUrl ??= listeningUrl((await readFile(logFile)).subarray(logOffset).toString("utf8"));
      if (proxyUrl === undefined) return false;
      const res = await fetch(`${proxyUrl}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  if (proxyUrl === undefined) throw new Error(`${name} did not log its listening address`);
  return { url: proxyUrl, proc, logFile };
}

function listeningUrl(log: string): string | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes('"listening"')) continue;
    try {
      const rec = JSON.parse(line) as { event?: unknown; proxy?: unknown };
      if (rec.event === "listening" && typeof rec.proxy === "string") return rec.proxy;
    } catch {
      // partial line
    }
  }
  return undefined;
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
