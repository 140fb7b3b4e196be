import { describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import {
  applyOptions,
  fileDefaultsSchema,
  fileProjectSchema,
  OPTION_DEFAULTS,
  PROJECT_OPTION_NAMES,
  policyOverrideSchema,
  type RawProjectOptions,
} from "./project-options.ts";

const pem = generateTestKey().publicKeyPem;

/** One valid value of every option, as written in a file or an API body. */
const every: Required<RawProjectOptions> = {
  mode: "enforce",
  keys: [{ name: "release", pem }],
  exempt: ["team/tools/*"],
  signatureRepository: "team/signatures",
  onLookupError: "allow",
  gateHead: true,
  strictBlobs: true,
  matchRepository: true,
  upstreams: ["hub"],
  pull: ["ci-*"],
};

describe("project options: one schema for the config file and the admin API", () => {
  it("the example sets every option", () => {
    expect(Object.keys(every).sort()).toEqual([...PROJECT_OPTION_NAMES].sort());
  });

  it("a project entry in the file takes every option", () => {
    expect(fileProjectSchema.safeParse(every).success).toBe(true);
  });

  it("defaults take every option but a project's reach", () => {
    const { upstreams: _reach, ...rest } = every;
    expect(fileDefaultsSchema.safeParse(rest).success).toBe(true);
    expect(fileDefaultsSchema.safeParse({ upstreams: ["hub"] }).success).toBe(false);
  });

  it("the admin API takes every option but who may pull, and no key files", () => {
    const { pull: _pull, ...rest } = every;
    expect(policyOverrideSchema.safeParse(rest).success).toBe(true);
    expect(policyOverrideSchema.safeParse({ pull: ["*"] }).success).toBe(false);
    const withPath = policyOverrideSchema.safeParse({ keys: [{ name: "k", path: "/etc/shadow" }] });
    expect(withPath.success).toBe(false);
    expect(withPath.error?.issues[0]?.path).toEqual(["keys", 0, "path"]);
  });

  it("applies a layer on top of a base: what it sets replaces, null clears signatureRepository, keys are parsed", () => {
    const problems: string[] = [];
    const base = applyOptions(OPTION_DEFAULTS, every, "", problems);
    expect(problems).toEqual([]);
    expect(base.keys[0]?.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const next = applyOptions(base, { mode: "audit", signatureRepository: null }, "", problems);
    expect(next).toMatchObject({ mode: "audit", signatureRepository: undefined, strictBlobs: true });
    expect(next.keys).toBe(base.keys);
  });

  it("reports a key file it may not read, and a key verify/ refuses, by path", () => {
    const problems: string[] = [];
    applyOptions(
      OPTION_DEFAULTS,
      {
        keys: [
          { name: "a", path: "a.pub" },
          { name: "b", pem: "x" },
        ],
      },
      "p.",
      problems,
    );
    expect(problems).toEqual([
      "p.keys[0].path: keys are given inline (pem) here",
      "p.keys[1]: key b: expected exactly one PEM block, found 0",
    ]);
  });
});
