/**
 * Repository globs for `exempt`: `*` matches within one path segment, `**` across segments.
 * "proj/tools/*" matches "proj/tools/x" but not "proj/tools/x/y"; "proj/**" matches everything under proj/.
 */
export function compileRepositoryGlob(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === "*") {
      if (glob[i + 1] === "*") {
        re += ".*";
        i++;
      } else re += "[^/]*";
    } else re += ch.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export function matchesAnyGlob(globs: readonly RegExp[], repository: string): boolean {
  return globs.some((g) => g.test(repository));
}
