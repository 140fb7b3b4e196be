import fc from "fast-check";
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

/**
 * The old implementation, kept as the oracle: a backtracking RegExp, exponential on some globs, so only
 * ever run on short inputs. dotAll: `**` means any characters (repository names never hold line
 * terminators, which a plain `.` would not match).
 */
function oracle(glob: string): RegExp {
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
  return new RegExp(`^${re}$`, "s");
}

/** Steps the linear-time guarantee allows: one pass over the glob's positions per character, plus one. */
const bound = (glob: string, name: string) => (name.length + 1) * glob.length;

const globChar = fc.constantFrom("a", "b", "/", "*", ".", "-");
const nameChar = fc.constantFrom("a", "b", "/", ".", "-");
const glob = fc.array(globChar, { maxLength: 12 }).map((cs) => cs.join(""));
const name = fc.array(nameChar, { maxLength: 24 }).map((cs) => cs.join(""));

/** A name the glob matches: each `**` replaced by any text, each `*` by text without `/`. */
const globAndMatchingName = glob.chain((g) => {
  const parts = g.split(/(\*+)/).filter((p) => p !== "");
  return fc
    .tuple(
      ...parts.map((p) =>
        p === "*"
          ? fc.array(fc.constantFrom("a", "b", ".", "-"), { maxLength: 4 }).map((cs) => cs.join(""))
          : p.startsWith("*")
            ? fc.array(nameChar, { maxLength: 6 }).map((cs) => cs.join(""))
            : fc.constant(p),
      ),
    )
    .map((filled) => [g, filled.join("")] as const);
});

describe("repository glob matcher against the RegExp it replaces", () => {
  it("agrees with the old RegExp on short globs and names over the characters that matter", () => {
    fc.assert(
      fc.property(glob, name, (g, n) => {
        expect(compileRepositoryGlob(g).test(n)).toBe(oracle(g).test(n));
      }),
      { numRuns: 5_000 },
    );
  });

  it("agrees with the old RegExp on arbitrary strings (any UTF-16, regex metacharacters, stars)", () => {
    const anyGlob = fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: "binary", maxLength: 10 }));
    fc.assert(
      fc.property(anyGlob, fc.string({ unit: "binary", maxLength: 16 }), (g, n) => {
        expect(compileRepositoryGlob(g).test(n)).toBe(oracle(g).test(n));
        // A name equal to a star-free glob always matches it.
        if (!g.includes("*")) expect(compileRepositoryGlob(g).test(g)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it("matches every name built from the glob (the matching side, rare among random names)", () => {
    fc.assert(
      fc.property(globAndMatchingName, ([g, n]) => {
        expect(oracle(g).test(n)).toBe(true);
        expect(compileRepositoryGlob(g).test(n)).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });

  it("never takes more than (len(name) + 1) × len(glob) steps", () => {
    fc.assert(
      fc.property(glob, fc.oneof(name, fc.string({ maxLength: 64 })), (g, n) => {
        expect(compileRepositoryGlob(g).testCountingSteps(n).steps).toBeLessThanOrEqual(bound(g, n));
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("catastrophic-backtracking globs run in linear time", () => {
  // Each of these froze the old RegExp matcher (seconds to forever) on the names below.
  const attacks: [string, string][] = [
    ["proj/**a**a**a**a**b", `proj/${"a".repeat(160)}`],
    [`proj/${"**a".repeat(40)}**b`, `proj/${"a".repeat(250)}`],
    [`proj/${"*a".repeat(80)}*b`, `proj/${"a".repeat(250)}`],
    [`${"**/".repeat(60)}x`, "/".repeat(255)],
    [`**${"a*".repeat(100)}b`, "a".repeat(255)],
  ];

  it.each(attacks)(
    "attack %#: %s on a hostile name, no match, steps within (len(name) + 1) × len(glob)",
    (g, n) => {
      const { matches, steps } = compileRepositoryGlob(g).testCountingSteps(n);
      expect(matches).toBe(false);
      expect(steps).toBeLessThanOrEqual(bound(g, n));
    },
  );

  it("the reported 165-character attack stays within len(name) × len(glob) steps", () => {
    const g = "proj/**a**a**a**a**b";
    const n = `proj/${"a".repeat(160)}`;
    expect(n).toHaveLength(165);
    const { matches, steps } = compileRepositoryGlob(g).testCountingSteps(n);
    expect(matches).toBe(false);
    expect(steps).toBeLessThanOrEqual(n.length * g.length);
  });

  it("steps grow linearly with the name: twice the name, at most twice the steps (plus the start)", () => {
    const c = compileRepositoryGlob("proj/**a**a**a**a**b");
    const short = c.testCountingSteps(`proj/${"a".repeat(500)}`).steps;
    const long = c.testCountingSteps(`proj/${"a".repeat(1_005)}`).steps;
    expect(long).toBeLessThanOrEqual(2 * short + 20);
  });

  it("still matches when the hostile shape does match", () => {
    expect(compileRepositoryGlob("proj/**a**a**a**a**b").test(`proj/${"a".repeat(160)}b`)).toBe(true);
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

describe("testCountingSteps counts exactly", () => {
  it.each([
    // glob, name, matches, steps: one step per token per character, plus one per leading star.
    ["a*", "ab", true, 4],
    ["*a", "xa", true, 5],
    ["**", "a/b", true, 4],
    ["a/*", "a/b/c", false, 12],
    // No state alive after a character: it stops there.
    ["a", "bcd", false, 1],
    ["ab", "axyz", false, 4],
    ["*/x", "a/yz", false, 10],
    ["", "", true, 0],
    ["", "a", false, 0],
  ] as const)("%j on %j", (glob, name, matched, steps) => {
    expect(compileRepositoryGlob(glob).testCountingSteps(name)).toEqual({ matches: matched, steps });
  });
});
