import { describe, expect, it } from "vitest";
import {
  payloadRepositoryProblem,
  sameRepository,
  subjectRepositoryProblem,
  toSignedRepository,
} from "./signed-repository.ts";

describe("signed repositories (matchRepository)", () => {
  it.each([
    ["registry.example/proj/app", { registry: "registry.example", name: "proj/app" }],
    ["registry.example:5000/proj/app:v1", { registry: "registry.example:5000", name: "proj/app" }],
    [
      `registry.example/proj/app@sha256:${"a".repeat(64)}`,
      { registry: "registry.example", name: "proj/app" },
    ],
    ["nginx", { registry: "docker.io", name: "library/nginx" }],
    ["index.docker.io/library/nginx:1", { registry: "docker.io", name: "library/nginx" }],
    ["localhost/app", { registry: "localhost", name: "app" }],
  ])("reads %s", (reference, expected) => {
    expect(toSignedRepository(reference)).toEqual(expected);
  });

  it("refuses what is not a repository", () => {
    for (const bad of ["", "registry.example/", "Proj/App", "a b"])
      expect(toSignedRepository(bad)).toBeUndefined();
  });

  it("compares Docker Hub's names as one registry, and nothing else loosely", () => {
    expect(
      sameRepository(
        { registry: "index.docker.io", name: "library/x" },
        { registry: "docker.io", name: "library/x" },
      ),
    ).toBe(true);
    expect(
      sameRepository(
        { registry: "r.example", name: "proj/app" },
        { registry: "r.example", name: "proj/app2" },
      ),
    ).toBe(false);
    expect(
      sameRepository(
        { registry: "r.example", name: "proj/app" },
        { registry: "s.example", name: "proj/app" },
      ),
    ).toBe(false);
  });

  it("reads the payload's docker-reference and the statement's subject names", () => {
    const expected = { registry: "r.example", name: "proj/app" };
    const payload = (ref: unknown) => ({ critical: { identity: { "docker-reference": ref } } });
    expect(payloadRepositoryProblem(payload("r.example/proj/app:v2"), expected)).toBeUndefined();
    expect(payloadRepositoryProblem(payload("r.example/proj/evil"), expected)).toMatch(
      /not r.example\/proj\/app/,
    );
    expect(payloadRepositoryProblem(payload(7), expected)).toMatch(/no docker-reference/);
    expect(subjectRepositoryProblem([{ name: "r.example/proj/app", digest: {} }], expected)).toBeUndefined();
    expect(subjectRepositoryProblem([{ digest: {} }], expected)).toMatch(/names a repository/);
    expect(subjectRepositoryProblem([{ name: "r.example/a" }, { name: "r.example/b" }], expected)).toBe(
      'statement subjects name "r.example/a", "r.example/b", not r.example/proj/app',
    );
  });
});
