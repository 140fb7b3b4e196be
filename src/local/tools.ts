import { existsSync } from "node:fs";
import { join } from "node:path";
import { findOnPath, run } from "./child-process.ts";

/** The package root (src/local/ and dist/local/ are two levels down). */
const PACKAGE_ROOT = join(import.meta.dirname, "..", "..");

/** A program on PATH and the Debian package that has it. */
export interface RequiredTool {
  command: string;
  debianPackage: string;
}

/** The tools among `tools` that are not on PATH. */
function missingTools(tools: readonly RequiredTool[]): RequiredTool[] {
  return tools.filter((tool) => findOnPath(tool.command) === undefined);
}

/** What to do about missing tools, in one line. */
function installHint(missing: readonly RequiredTool[]): string {
  const packages = [...new Set(missing.map((tool) => tool.debianPackage))];
  return `missing ${missing.map((tool) => tool.command).join(" and ")}; install ${packages.join(" ")} (Debian: apt-get install ${packages.join(" ")})`;
}

/**
 * Makes sure every tool is on PATH, apt-get installing the missing ones with scripts/apt-ensure.sh (Debian 12,
 * root). Returns the packages it installed; throws with what to do otherwise.
 */
export async function ensureTools(
  tools: readonly RequiredTool[],
  say: (line: string) => void,
): Promise<string[]> {
  const missing = missingTools(tools);
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.map((tool) => tool.debianPackage))];
  const script = join(PACKAGE_ROOT, "scripts", "apt-ensure.sh");
  if (!existsSync(script)) throw new Error(installHint(missing));
  say(`installing ${packages.join(", ")} with apt-get (scripts/apt-ensure.sh), this can take a minute…`);
  const result = await run(
    "sh",
    [script, ...missing.map((tool) => `${tool.command}:${tool.debianPackage}`)],
    {
      timeoutMs: 15 * 60_000,
    },
  );
  if (result.code !== 0) {
    const tail = `${result.stdout}${result.stderr}`.trimEnd().split("\n").slice(-12).join("\n");
    throw new Error(`could not install ${packages.join(", ")}:\n${tail}`);
  }
  return packages;
}

/** Environment for skopeo: no registry credentials or config inherited from the developer's machine. */
export function skopeoEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.REGISTRY_AUTH_FILE;
  delete env.CONTAINERS_REGISTRIES_CONF;
  delete env.CONTAINERS_CONF;
  return env;
}
