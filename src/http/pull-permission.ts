import type { Config } from "../config/index.ts";
import { OciError } from "../oci/index.ts";
import { projectOf } from "../policy/index.ts";

export interface PullPermissions {
  /**
   * Throws 403 DENIED unless `principal` may pull `repository` (the upstream name, after routing) from
   * `upstream` (a project's list applies only where the project reaches).
   */
  check(principal: string, repository: string, upstream?: string): void;
}

/**
 * Who may pull which project: `projects.<name>.pull`, else `defaults.pull` (`["*"]`: any authenticated
 * client). An entry is an exact principal, a `prefix*`, or `*`. Kept apart from the signature policy:
 * it is not part of a policy's fingerprint and not changeable through the admin API.
 */
export function createPullPermissions(config: Pick<Config, "projects" | "defaults">): PullPermissions {
  const listFor = (project: string, upstream: string | undefined): readonly string[] => {
    const entry = Object.hasOwn(config.projects, project) ? config.projects[project] : undefined;
    const reached =
      entry &&
      (upstream === undefined || entry.upstreams.includes("*") || entry.upstreams.includes(upstream));
    return (reached ? entry.pull : undefined) ?? config.defaults.pull;
  };
  return {
    check(principal, repository, upstream) {
      const project = projectOf(repository);
      if (listFor(project, upstream).some((entry) => allows(entry, principal))) return;
      throw new OciError(
        "DENIED",
        `${JSON.stringify(principal)} may not pull from project ${JSON.stringify(project)}`,
        {
          detail: { project, principal },
        },
      );
    },
  };
}

export function allows(entry: string, principal: string): boolean {
  if (entry === "*") return true;
  if (entry.endsWith("*")) return principal.startsWith(entry.slice(0, -1));
  return principal === entry;
}
