import { existsSync } from "node:fs";
import { join } from "node:path";
import { findOnPath, runCommand } from "./child-processes.ts";

/** The package root (src/demo/ is two levels down). */
const PACKAGE_ROOT = join(import.meta.dirname, "..", "..");

/** command → Debian package */
const REQUIRED_TOOLS: ReadonlyArray<readonly [string, string]> = [
  ["docker-registry", "docker-registry"],
  ["skopeo", "skopeo"],
];

/**
 * Makes sure docker-registry and skopeo are on PATH, apt-get installing the missing ones with
 * scripts/apt-ensure.sh (Debian 12, root). Returns what it installed; throws with what to do otherwise.
 */
export async function ensureTools(say: (line: string) => void): Promise<string[]> {
  const missing = REQUIRED_TOOLS.filter(([command]) => findOnPath(command) === undefined);
  if (missing.length === 0) return [];
  const packages = missing.map(([, pkg]) => pkg);
  const script = join(PACKAGE_ROOT, "scripts", "apt-ensure.sh");
  if (!existsSync(script)) {
    throw new Error(
      `missing ${missing.map(([c]) => c).join(" and ")}; install ${packages.join(" ")} (Debian: apt-get install ${packages.join(" ")})`,
    );
  }
  say(`installing ${packages.join(", ")} with apt-get (scripts/apt-ensure.sh), this can take a minute…`);
  const result = await runCommand("sh", [script, ...missing.map(([command, pkg]) => `${command}:${pkg}`)], {
    timeoutMs: 15 * 60_000,
  });
  if (result.code !== 0) {
    const tail = `${result.stdout}${result.stderr}`.trimEnd().split("\n").slice(-12).join("\n");
    throw new Error(`could not install ${packages.join(", ")}:\n${tail}`);
  }
  return packages;
}
