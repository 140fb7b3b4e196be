import { readFileSync, unwatchFile, watchFile } from "node:fs";
import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import { parseTrustRoot, type TrustRoot } from "../verify/index.ts";

/**
 * Keeps the configured trusted roots current, as the TLS files are: each file is polled (stat-based,
 * so a Kubernetes Secret or ConfigMap volume that swaps a symlink is seen too). A file whose content
 * changed and parses as a trusted root replaces its root in place, then `onChange` runs (the policy
 * registry rebuilds policies: their fingerprints cover the root's bytes). A file that does not parse
 * (half-written, wrong) is ignored and logged: the previous root stays. Returns a function that stops.
 */
export function watchTrustRoots(opts: {
  roots: ReadonlyMap<string, TrustRoot>;
  paths: ReadonlyMap<string, string>;
  intervalMs: number;
  logger: Logger;
  onChange: () => void;
}): () => void {
  const stops: Array<() => void> = [];
  for (const [name, path] of opts.paths) {
    const root = opts.roots.get(name);
    if (!root) continue;
    const reload = () => {
      let next: TrustRoot;
      try {
        next = parseTrustRoot(name, readFileSync(path));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "error";
        opts.logger.log("warn", "trusted root reload failed", {
          root: name,
          code,
          cause: errorCause(err),
          note: "keeping the previous root",
        });
        return;
      }
      if (next.sha256 === root.sha256) return;
      root.replaceWith(next);
      opts.onChange();
      opts.logger.log("info", "trusted root reloaded", { root: name, sha256: next.sha256 });
    };
    watchFile(path, { interval: opts.intervalMs, persistent: false }, reload);
    stops.push(() => unwatchFile(path, reload));
  }
  return () => {
    for (const stop of stops) stop();
  };
}
