import { join } from "node:path";
import { run } from "../../src/local/index.ts";

/**
 * `skopeo copy` of `<host>/<repository>:<tag>` (plain HTTP, no credentials) into a fresh `dir:`
 * under `workDir`: what a client does with a pull, and what it prints when refused.
 */
export function skopeoCopy(
  host: string,
  repository: string,
  workDir: string,
  tag = "v1",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dest = join(
    workDir,
    `copy-${repository.replaceAll("/", "-")}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
  );
  return run("skopeo", [
    "--insecure-policy",
    "copy",
    "--src-tls-verify=false",
    "--src-no-creds",
    `docker://${host}/${repository}:${tag}`,
    `dir:${dest}`,
  ]);
}
