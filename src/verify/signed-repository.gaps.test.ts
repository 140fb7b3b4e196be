import { describe, expect, it } from "vitest";
import {
  payloadRepositoryProblem,
  sameRepository,
  subjectRepositoryProblem,
  toSignedRepository,
} from "./signed-repository.ts";

// Edge cases of reading a signed reference, found by mutation testing.

describe("toSignedRepository: edge cases", () => {
  it.each([
    ["  r.example/proj/app:v1  ", { registry: "r.example", name: "proj/app" }],
    ["myhost:5000/app", { registry: "myhost:5000", name: "app" }],
    ["localhost:5000/app:v1", { registry: "localhost:5000", name: "app" }],
    ["Registry.Example/app", { registry: "registry.example", name: "app" }],
    ["proj/app", { registry: "docker.io", name: "proj/app" }],
    ["proj/app:v1", { registry: "docker.io", name: "proj/app" }],
    [`nginx@sha256:${"b".repeat(64)}`, { registry: "docker.io", name: "library/nginx" }],
    ["nginx:1.27", { registry: "docker.io", name: "library/nginx" }],
    ["docker.io/proj/app", { registry: "docker.io", name: "proj/app" }],
    ["docker.io/nginx", { registry: "docker.io", name: "library/nginx" }],
    ["registry-1.docker.io/nginx", { registry: "docker.io", name: "library/nginx" }],
    ["registry.hub.docker.com/proj/app", { registry: "docker.io", name: "proj/app" }],
    ["r.example/a.b_c-d/e", { registry: "r.example", name: "a.b_c-d/e" }],
    ["r.example/nginx", { registry: "r.example", name: "nginx" }],
  ])("reads %j", (reference, expected) => {
    expect(toSignedRepository(reference)).toEqual(expected);
  });

  it.each([
    "r.example/x:1/y",
    "r.example/app!",
    "r.example/!app",
    "r.example/APP",
    "@sha256:abc",
    ":v1",
    "r.example/:v1",
    "   ",
  ])("refuses %j", (reference) => {
    expect(toSignedRepository(reference)).toBeUndefined();
  });
});

describe("sameRepository: edge cases", () => {
  it("unifies Docker Hub's names on either side only", () => {
    const hub = { registry: "docker.io", name: "library/x" };
    for (const alias of ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]) {
      expect(sameRepository(hub, { registry: alias, name: "library/x" })).toBe(true);
      expect(sameRepository({ registry: alias, name: "library/x" }, hub)).toBe(true);
    }
    expect(sameRepository(hub, { registry: "docker.example", name: "library/x" })).toBe(false);
    expect(sameRepository({ registry: "r.example", name: "a" }, { registry: "r.example", name: "a" })).toBe(
      true,
    );
  });
});

describe("payloadRepositoryProblem / subjectRepositoryProblem: the problems", () => {
  const expected = { registry: "r.example", name: "proj/app" };
  const payload = (identity: unknown) => ({ critical: { identity } });

  it("a payload without a readable docker-reference names none", () => {
    for (const p of [
      null,
      "x",
      1,
      { critical: "x" },
      { critical: null },
      payload("x"),
      payload(null),
      payload({}),
    ])
      expect(payloadRepositoryProblem(p, expected)).toBe("payload names no docker-reference");
  });

  it("says which reference the payload names", () => {
    expect(payloadRepositoryProblem(payload({ "docker-reference": "r.example/proj/evil" }), expected)).toBe(
      'payload is for "r.example/proj/evil", not r.example/proj/app',
    );
    expect(payloadRepositoryProblem(payload({ "docker-reference": "R.EXAMPLE/PROJ/APP" }), expected)).toBe(
      'payload is for "R.EXAMPLE/PROJ/APP", not r.example/proj/app',
    );
    expect(payloadRepositoryProblem(payload({ "docker-reference": "s.example/proj/app" }), expected)).toBe(
      'payload is for "s.example/proj/app", not r.example/proj/app',
    );
    expect(
      payloadRepositoryProblem(payload({ "docker-reference": "r.example/proj/app@sha256:x" }), expected),
    ).toBeUndefined();
  });

  it("accepts a statement when any subject names the repository", () => {
    expect(
      subjectRepositoryProblem(
        [{ name: "BAD NAME" }, { name: "r.example/proj/other" }, { name: "r.example/proj/app:v1" }],
        expected,
      ),
    ).toBeUndefined();
  });

  it("a statement whose subjects name no repository names none", () => {
    for (const subjects of [[], [null], ["r.example/proj/app"], [{ name: "" }], [{ name: 3 }]])
      expect(subjectRepositoryProblem(subjects, expected)).toBe("no statement subject names a repository");
  });

  it("says that the subjects name other repositories", () => {
    const problem = subjectRepositoryProblem(
      [{ name: "BAD NAME" }, { name: "r.example/proj/evil" }],
      expected,
    );
    // The quoted names are not pinned: `names.map(quote)` passes the index as quote's `max`.
    expect(problem).toMatch(/^statement subjects name .+, .+, not r\.example\/proj\/app$/);
  });
});
