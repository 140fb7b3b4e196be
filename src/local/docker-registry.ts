import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  fileSize,
  type ManagedProcess,
  type RestartableProcess,
  runOk,
  startProcess,
  startRestartable,
} from "./child-process.ts";
import { freePort, listensOn } from "./ports.ts";

/**
 * A throwaway upstream: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, its config, logs
 * and storage in a directory of the caller's, no deletes and no upload purging.
 *
 * What distribution 2.8 logs (verified with 2.8.2+ds1):
 *  - stdout: gorilla/handlers "combined" access log, one line for EVERY request, including 401s and 404s for
 *    unknown routes, written after the response has been sent (`accessLog`).
 *  - stderr: logrus JSON (`logFile`); at level info it says `"msg":"listening on 127.0.0.1:PORT"` once bound.
 */

/** User-Agent of the readiness probes, so that a reader of the access log can leave them out. */
export const REGISTRY_PROBE_USER_AGENT = "pullgate-local-probe";

export interface DockerRegistryOptions {
  /** Config, logs and (unless `storageDir` or `inMemory`) `storage/`; must exist. */
  dir: string;
  /** Process name, and the base name of its config and log files (default "docker-registry"). */
  name?: string;
  /** Bind this port instead of a free one (e.g. to take over a halted registry's address). */
  port?: number;
  /** Serve this storage root instead of `<dir>/storage` (e.g. another registry's `storageDir`). */
  storageDir?: string;
  /** Keep everything in the process's memory (distribution's `inmemory` driver): no disk, gone on exit. */
  inMemory?: boolean;
  /** A pull-through cache of this registry (distribution's `proxy.remoteurl`). */
  proxyRemoteUrl?: string;
  /** Require HTTP Basic auth (htpasswd file made with the `htpasswd` CLI, bcrypt). */
  auth?: { username: string; password: string };
  /** "info" (default) or "error" (its own logging then does not weigh on what a benchmark measures). */
  logLevel?: "info" | "error";
  /** Write the access log to `accessLogFile` (default false). */
  accessLog?: boolean;
  /** distribution's in-memory blob descriptor cache, as Debian's packaged config has it (default false). */
  blobDescriptorCache?: boolean;
  readyTimeoutMs?: number;
  /** Told about every docker-registry process as soon as it exists (restarts included). */
  onSpawn?: (proc: ManagedProcess) => void;
}

export interface DockerRegistry extends RestartableProcess {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  dir: string;
  /** Filesystem storage root (rootdirectory; unused with `inMemory`). */
  storageDir: string;
  configFile: string;
  /** distribution's JSON log (stderr; stdout too when there is no access log). */
  logFile: string;
  /** The access log (stdout), when started with `accessLog`. */
  accessLogFile: string | undefined;
}

export async function startDockerRegistry(opts: DockerRegistryOptions): Promise<DockerRegistry> {
  const { dir } = opts;
  const name = opts.name ?? "docker-registry";
  const logLevel = opts.logLevel ?? "info";
  const storageDir = opts.storageDir ?? join(dir, "storage");
  if (!opts.inMemory) await mkdir(storageDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;

  // YAML is a superset of JSON, so the config is written as JSON.
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: logLevel, formatter: "json", accesslog: { disabled: opts.accessLog !== true } },
    storage: {
      ...(opts.blobDescriptorCache ? { cache: { blobdescriptor: "inmemory" } } : {}),
      ...(opts.inMemory ? { inmemory: {} } : { filesystem: { rootdirectory: storageDir } }),
      delete: { enabled: false },
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret silences the "No HTTP secret provided" warning (and is the same for every process
    // serving one storage).
    http: { addr: host, secret: "pullgate-local-registry" },
    ...(opts.proxyRemoteUrl ? { proxy: { remoteurl: opts.proxyRemoteUrl } } : {}),
  };
  if (opts.auth) {
    const { stdout } = await runOk("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password]);
    const htpasswdFile = join(dir, `${name}.htpasswd`);
    await writeFile(htpasswdFile, `${stdout.trim()}\n`);
    config.auth = { htpasswd: { realm: "pullgate-local-registry", path: htpasswdFile } };
  }
  const configFile = join(dir, `${name}.yml`);
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);

  const logFile = join(dir, `${name}.log`);
  const accessLogFile = opts.accessLog ? join(dir, `${name}-access.log`) : undefined;
  // distribution overrides config keys from REGISTRY_* variables: do not inherit any.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_")));

  const launch = async (): Promise<ManagedProcess> => {
    // The logs are appended to across restart(): only look at what this run writes.
    const logOffset = await fileSize(logFile);
    const proc = await startProcess({
      name,
      command: "docker-registry",
      args: ["serve", configFile],
      cwd: dir,
      env,
      logDir: dir,
      stdoutFile: accessLogFile ?? logFile,
      stderrFile: logFile,
      ready: async () => {
        // At level info, first make sure OUR process bound the port (a fatal "address already in use" exits
        // instead), so a different server answering on that port cannot make an unbound registry look ready.
        if (logLevel === "info") {
          const ownLog = (await readFile(logFile)).subarray(logOffset).toString("utf8");
          if (!ownLog.includes(`"msg":"listening on ${host}"`)) return false;
        }
        const res = await fetch(`${url}/v2/`, {
          headers: { "user-agent": REGISTRY_PROBE_USER_AGENT },
          signal: AbortSignal.timeout(2_000),
        });
        await res.body?.cancel();
        return res.status === (opts.auth ? 401 : 200);
      },
      readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
      onSpawn: opts.onSpawn,
    });
    // Error-level logs do not say "listening on": ask the kernel who holds the port instead.
    if (logLevel !== "info" && !(await listensOn(proc.pid, port))) {
      await proc.stop();
      throw new Error(`${name}: port ${port} is held by another process`);
    }
    return proc;
  };
  return {
    ...(await startRestartable(name, launch)),
    host,
    url,
    port,
    dir,
    storageDir,
    configFile,
    logFile,
    accessLogFile,
  };
}
