import { describe, expect, it } from "vitest";
import { projectOf } from "./project.ts";
import { compileRepositoryGlob, matchesAnyGlob } from "./repository-glob.ts";

const matches = (glob: string, repository: string) => compileRepositoryGlob(glob).test(repository);

describe("compileRepositoryGlob", () => {
  it.each([
    ["proj/tools/*", "proj/tools/curl", true],
    ["proj/tools/*", "proj/tools/curl/sub", false],
    ["proj/tools/*", "proj/toolsx/curl", false],
    ["proj/*/cache", "proj/a/cache", true],
    ["proj/*/cache", "proj/a/b/cache", false],
    ["proj/**", "proj/a/b/c", true],
    ["proj/**", "other/a", false],
    ["proj/**/cache", "proj/a/b/cache", true],
    ["proj/app", "proj/app", true],
    ["proj/app", "proj/app/sub", false],
    ["proj/app", "xproj/app", false],
    ["proj/a*", "proj/abc", true],
    ["proj/a*", "proj/b", false],
  ])("%s vs %s → %s", (glob, repository, expected) => {
    expect(matches(glob, repository)).toBe(expected);
  });

  it("matches '.' literally, never as a regex wildcard", () => {
    expect(matches("proj/a.b", "proj/a.b")).toBe(true);
    expect(matches("proj/a.b", "proj/aXb")).toBe(false);
    expect(matches("proj/v1.*", "proj/v1x2")).toBe(false);
  });

  it("escapes every other regex metacharacter", () => {
    expect(matches("proj/a+b", "proj/aab")).toBe(false);
    expect(matches("proj/a+b", "proj/a+b")).toBe(true);
    expect(matches("proj/(a|b)", "proj/a")).toBe(false);
    expect(matches("proj/a?", "proj/a")).toBe(false);
  });

  it("matchesAnyGlob is true when one glob matches", () => {
    const globs = ["proj/tools/*", "proj/vendor/**"].map(compileRepositoryGlob);
    expect(matchesAnyGlob(globs, "proj/vendor/x/y")).toBe(true);
    expect(matchesAnyGlob(globs, "proj/app")).toBe(false);
    expect(matchesAnyGlob([], "proj/app")).toBe(false);
  });
});

describe("projectOf", () => {
  it.each([
    ["library/nginx", "library"],
    ["proj/app/sub", "proj"],
    ["nginx", "nginx"],
  ])("%s → %s", (repository, project) => {
    expect(projectOf(repository)).toBe(project);
  });
});
