import { dirname, join } from "node:path";
import { DEFAULT_MIRROR_URL } from "@sigstore/tuf";
import { ConfigError, configuredTrustedRootFiles } from "../config/index.ts";
import { PUBLIC_GOOD } from "../policy/index.ts";
import { TrustedRootUpdateError, updateTrustedRoot } from "./update-trusted-root.ts";

export const TRUST_USAGE = `usage: pullgate trust update [--config FILE] [--root NAME] [--mirror URL] [--tuf-root FILE]
                             [--cache DIR] [--timeout-ms N]

  trust update     fetch the current trusted root over TUF into the file trustedRoots.NAME.path of the
                   configuration names; running pullgate processes pick it up within 2 s
  --root NAME      which trusted root (default public-good: configure trustedRoots.public-good.path
                   to keep your own copy of the built-in root current)
  --mirror URL     TUF repository (default for public-good: ${DEFAULT_MIRROR_URL})
  --tuf-root FILE  the mirror's initial TUF root.json (needed once for a mirror other than public-good)
  --cache DIR      TUF metadata cache (default: .tuf-cache next to the trusted root's file)
  --timeout-ms N   per request (default 30000)
`;

interface TrustUpdateArgs {
  configPath: string | undefined;
  root: string;
  mirrorUrl: string | undefined;
  tufRootPath: string | undefined;
  cacheDir: string | undefined;
  timeoutMs: number;
}

/** `pullgate trust …`. Exit codes: 0 done, 1 the update failed (file unchanged), 2 bad usage or config. */
export async function runTrustCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h" || sub === "help") {
    process.stdout.write(TRUST_USAGE);
    return 0;
  }
  if (sub !== "update")
    return usageError(
      sub === undefined ? "trust needs a subcommand" : `unknown trust subcommand ${JSON.stringify(sub)}`,
    );
  const args = parseUpdateArgs(rest, env);
  if (typeof args === "string") return usageError(args);

  let files: ReadonlyMap<string, string>;
  let source: string;
  try {
    ({ files, source } = configuredTrustedRootFiles({ path: args.configPath, env }));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`pullgate: ${err.message}\n`);
    return 2;
  }
  const file = files.get(args.root);
  if (file === undefined) {
    const hint =
      args.root === PUBLIC_GOOD
        ? "the built-in copy is read-only: add trustedRoots.public-good.path to keep your own copy current"
        : `configured roots with a file: ${[...files.keys()].join(", ") || "none"}`;
    process.stderr.write(
      `pullgate: trust update: ${source} has no trustedRoots.${args.root}.path to write (${hint})\n`,
    );
    return 2;
  }
  const mirrorUrl = args.mirrorUrl ?? (args.root === PUBLIC_GOOD ? DEFAULT_MIRROR_URL : undefined);
  if (mirrorUrl === undefined) {
    return usageError(
      `--mirror URL is needed for trusted root ${args.root} (only public-good has a default)`,
    );
  }

  try {
    const result = await updateTrustedRoot({
      name: args.root,
      file,
      mirrorUrl,
      tufRootPath: args.tufRootPath,
      cacheDir: args.cacheDir ?? join(dirname(file), ".tuf-cache"),
      timeoutMs: args.timeoutMs,
    });
    const m = result.root.material;
    const contents = `${m.certificateAuthorities.length} certificate authorities, ${m.tlogs.length} transparency logs, ${m.ctlogs.length} CT logs, ${m.timestampAuthorities.length} timestamp authorities`;
    process.stdout.write(
      result.outcome === "current"
        ? `pullgate: trusted root ${args.root} is current: ${file} (sha256 ${result.root.sha256}; ${contents})\n`
        : `pullgate: trusted root ${args.root} updated from ${mirrorUrl}: ${file} (sha256 ${result.previousSha256 ?? "none"} -> ${result.root.sha256}; ${contents}); running pullgate processes read it within 2 s\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof TrustedRootUpdateError)) throw err;
    process.stderr.write(`pullgate: trust update: ${err.message}; ${file} is unchanged\n`);
    return 1;
  }
}

function usageError(message: string): number {
  process.stderr.write(`pullgate: ${message}\n${TRUST_USAGE}`);
  return 2;
}

const VALUED_FLAGS = new Set([
  "--config",
  "-c",
  "--root",
  "--mirror",
  "--tuf-root",
  "--cache",
  "--timeout-ms",
]);

/** The options of `trust update`, or what is wrong with them. */
function parseUpdateArgs(rest: readonly string[], env: NodeJS.ProcessEnv): TrustUpdateArgs | string {
  const args: TrustUpdateArgs = {
    configPath: env.PULLGATE_CONFIG || undefined,
    root: PUBLIC_GOOD,
    mirrorUrl: undefined,
    tufRootPath: undefined,
    cacheDir: undefined,
    timeoutMs: 30_000,
  };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 && arg.startsWith("--") ? arg.slice(eq + 1) : rest[++i]);
    if (!VALUED_FLAGS.has(flag)) return `unknown option ${JSON.stringify(arg)}`;
    const v = value();
    if (!v) return `${flag} needs a value`;
    switch (flag) {
      case "--config":
      case "-c":
        args.configPath = v;
        break;
      case "--root":
        args.root = v;
        break;
      case "--mirror": {
        const url = URL.canParse(v) ? new URL(v) : undefined;
        if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
          return `--mirror must be an http(s) URL, not ${JSON.stringify(v)}`;
        }
        args.mirrorUrl = v.replace(/\/+$/, "");
        break;
      }
      case "--tuf-root":
        args.tufRootPath = v;
        break;
      case "--cache":
        args.cacheDir = v;
        break;
      case "--timeout-ms": {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 100 || n > 600_000)
          return "--timeout-ms must be an integer from 100 to 600000";
        args.timeoutMs = n;
        break;
      }
    }
  }
  return args;
}
