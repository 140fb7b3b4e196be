import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type RunResult, run, startProcess } from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

/**
 * A private containerd 1.6.20 (Debian) for client tests: own root/state/temp dirs and gRPC socket in a temp
 * dir, nothing under /var/lib/containerd, /run/containerd or /opt/containerd.
 *
 * Plugins that are disabled (verified with `ctr plugins ls` and the daemon log):
 *  - the CRI plugin (not needed; wants CNI dirs, a sandbox image, ...);
 *  - snapshotters other than `native` (aufs/btrfs/zfs only log "skip", devmapper logs an error,
 *    overlayfs needs mount privileges);
 *  - runtimes, tasks, cgroups monitor and `restart` (no containers are run);
 *  - `io.containerd.internal.v1.opt` (would create /opt/containerd).
 * The metadata store uses `content_sharing_policy = "isolated"` (default "shared" lets a namespace reuse blobs
 * another namespace downloaded, i.e. a pull in a fresh namespace could skip requests).
 */

export type PullOptions = {
  /** `--hosts-dir`: directory with `<registry host>/hosts.toml` (see writeHostsToml). */
  hostsDir: string;
  /** `--plain-http` (default true: everything in the tests is plain HTTP on loopback). */
  plainHttp?: boolean;
  /** containerd namespace (default "pgtest"). */
  namespace?: string;
  /**
   * false (default): `ctr content fetch` = resolve + download manifests/config/layers, no unpack, no
   * privileges needed. true: `ctr images pull --snapshotter native` (also unpacks, which bind-mounts and so
   * needs CAP_SYS_ADMIN). Both use the same resolver/fetcher, so the registry sees the same requests.
   */
  unpack?: boolean;
  /** `--platform` (default: the host platform, linux/amd64 here). */
  platform?: string;
  /** `--all-platforms` */
  allPlatforms?: boolean;
  /** `--user user:pass` */
  user?: string;
  extraArgs?: string[];
  timeoutMs?: number;
};

export type Containerd = {
  /** gRPC unix socket path. */
  address: string;
  dir: string;
  logFile: string;
  /** Runs ctr against this containerd; never throws on a non-zero exit. */
  pull(ref: string, opts: PullOptions): Promise<RunResult>;
  /** Any ctr command: `ctr --address <sock> -n <namespace> ...args`. */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Removes every image of the namespace and garbage-collects its content (next pull downloads again). */
  clear(namespace?: string): Promise<void>;
  stop(): Promise<void>;
};

const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.runtime.v1.linux",
  "io.containerd.runtime.v2.task",
  "io.containerd.monitor.v1.cgroups",
  "io.containerd.service.v1.tasks-service",
  "io.containerd.grpc.v1.tasks",
  "io.containerd.internal.v1.restart",
  "io.containerd.internal.v1.opt",
];

const DEFAULT_NAMESPACE = "pgtest";

/** Environment for containerd/ctr without CONTAINERD_* overrides from the caller's shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CONTAINERD_")));
}

function tomlString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid TOML basic string for our paths/URLs
}

export async function startContainerd(): Promise<Containerd> {
  const dir = await makeTempDir("containerd");
  try {
    const address = join(dir, "containerd.sock");
    // sun_path is 108 bytes including the NUL; containerd also listens on `<address>.ttrpc`.
    if (Buffer.byteLength(`${address}.ttrpc`) > 107) {
      throw new Error(`containerd socket path too long (${address}); use a shorter TMPDIR`);
    }
    for (const sub of ["root", "state", "tmp"]) await mkdir(join(dir, sub));
    const config = [
      "version = 2",
      `root = ${tomlString(join(dir, "root"))}`,
      `state = ${tomlString(join(dir, "state"))}`,
      `temp = ${tomlString(join(dir, "tmp"))}`,
      `disabled_plugins = [${DISABLED_PLUGINS.map(tomlString).join(", ")}]`,
      "",
      "[grpc]",
      `  address = ${tomlString(address)}`,
      "",
      "[ttrpc]",
      `  address = ${tomlString(`${address}.ttrpc`)}`,
      "",
      '[plugins."io.containerd.metadata.v1.bolt"]',
      '  content_sharing_policy = "isolated"',
      "",
    ].join("\n");
    const configFile = join(dir, "config.toml");
    await writeFile(configFile, config);

    const env = cleanEnv();
    const ctr = (args: string[], opts: { namespace?: string; timeoutMs?: number } = {}): Promise<RunResult> =>
      run("ctr", ["--address", address, "-n", opts.namespace ?? DEFAULT_NAMESPACE, ...args], {
        env,
        timeoutMs: opts.timeoutMs ?? 60_000,
      });

    const proc = await startProcess({
      name: "containerd",
      command: "containerd",
      args: ["--config", configFile],
      env,
      logDir: dir,
      ready: async () => (await ctr(["version"], { timeoutMs: 5_000 })).code === 0,
      readyTimeoutMs: 30_000,
      pollIntervalMs: 100,
    });

    let stopped = false;
    return {
      address,
      dir,
      logFile: proc.stdoutFile,
      ctr,
      pull: (ref, opts) => {
        const args = opts.unpack ? ["images", "pull", "--snapshotter", "native"] : ["content", "fetch"];
        if (opts.plainHttp ?? true) args.push("--plain-http");
        args.push("--hosts-dir", opts.hostsDir);
        if (opts.platform) args.push("--platform", opts.platform);
        if (opts.allPlatforms) args.push("--all-platforms");
        if (opts.user) args.push("--user", opts.user);
        args.push(...(opts.extraArgs ?? []), ref);
        return ctr(args, { namespace: opts.namespace, timeoutMs: opts.timeoutMs ?? 120_000 });
      },
      clear: async (namespace = DEFAULT_NAMESPACE) => {
        const list = await ctr(["images", "ls", "-q"], { namespace });
        const refs = list.stdout.split("\n").filter((l) => l.trim() !== "");
        if (refs.length > 0) {
          const rm = await ctr(["images", "rm", "--sync", ...refs], { namespace });
          if (rm.code !== 0) throw new Error(`ctr images rm failed: ${rm.stderr}`);
        }
        // Content without an image (e.g. from a failed pull) is not collected by the GC above.
        const content = await ctr(["content", "ls", "-q"], { namespace });
        const digests = content.stdout.split("\n").filter((l) => l.startsWith("sha256:"));
        if (digests.length > 0) await ctr(["content", "rm", ...digests], { namespace });
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await proc.stop();
        await removeDir(dir);
      },
    };
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

/**
 * Writes `<dir>/<upstreamHost>/hosts.toml` routing every pull of `<upstreamHost>/...` to `proxyUrl` only
 * (the enforcing layout of docs/client-configs/containerd-hosts-enforce): `server` AND a `[host]` table for
 * the proxy. containerd 1.6/1.7 reject a file with only `server =` ("invalid `host` tree") and then silently
 * go direct to the upstream. `upstreamHost` is the registry part of the image name ("127.0.0.1:5000",
 * "docker.io", or "_default" for every registry without its own directory).
 */
export async function writeHostsToml(dir: string, upstreamHost: string, proxyUrl: string): Promise<string> {
  const hostDir = join(dir, upstreamHost);
  await mkdir(hostDir, { recursive: true });
  const file = join(hostDir, "hosts.toml");
  await writeFile(
    file,
    [
      `server = ${tomlString(proxyUrl)}`,
      "",
      `[host.${tomlString(proxyUrl)}]`,
      '  capabilities = ["pull", "resolve"]',
      "",
    ].join("\n"),
  );
  return file;
}
