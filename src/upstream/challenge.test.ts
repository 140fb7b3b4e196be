import { describe, expect, it } from "vitest";
import { parseChallenges } from "./challenge.ts";

describe("parseChallenges", () => {
  it("parses a registry Bearer challenge", () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/nginx:pull",
        },
      },
    ]);
  });
  it("parses Basic, unquoted values, escapes and several challenges", () => {
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: "basic", params: { realm: "Registry Realm" } },
    ]);
    expect(parseChallenges('Bearer realm=http://a/t, service="s\\"x"')).toEqual([
      { scheme: "bearer", params: { realm: "http://a/t", service: 's"x' } },
    ]);
    const two = parseChallenges('Basic realm="r", Bearer realm="https://t",service="s"');
    expect(two.map((c) => c.scheme)).toEqual(["basic", "bearer"]);
    expect(two[1]?.params.realm).toBe("https://t");
  });
  it("returns nothing for empty or garbage input", () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges("")).toEqual([]);
    expect(parseChallenges("===")).toEqual([]);
  });
});
