import { describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { PGI_ROOT, vectorText } from "../../test/support/vectors.ts";
import { parseTrustRoot } from "../verify/index.ts";
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
const ctx = { roots: new Map([["public-good", parseTrustRoot("public-good", vectorText(PGI_ROOT))]]) };

/** One valid value of every option, as written in a file or an API body. */
const every: Required<RawProjectOptions> = {
  mode: "enforce",
  keys: [{ name: "release", pem, transparencyLog: "optional", trustedRoot: "public-good" }],
  keyless: [
    {
      name: "release-workflow",
      issuer: "https://token.actions.githubusercontent.com",
      subjectRegExp: "https://github\\.com/acme/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.*",
      extensions: { sourceRepositoryURI: "https://github.com/acme/app" },
    },
  ],
  threshold: 2,
  requiredSigners: ["release"],
  annotations: { project: "prod" },
  attestations: [
    {
      name: "provenance",
      predicateType: "https://slsa.dev/provenance/v1",
      signers: ["release-workflow"],
      condition: 'predicate.buildDefinition.buildType == "https://actions.github.io/buildtypes/workflow/v1"',
    },
  ],
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
    const base = applyOptions(OPTION_DEFAULTS, every, "", problems, ctx);
    expect(problems).toEqual([]);
    expect(base.keys[0]?.key?.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(base.keys[0]).toMatchObject({ transparencyLog: "optional", root: { name: "public-good" } });
    expect(base.keyless[0]?.identity.subject).toBeInstanceOf(RegExp);
    const next = applyOptions(base, { mode: "audit", signatureRepository: null }, "", problems, ctx);
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
      ctx,
    );
    expect(problems).toEqual([
      "p.keys[0].path: keys are given inline (pem) here",
      "p.keys[1]: key b: expected exactly one PEM block, found 0",
    ]);
  });

  it("reports keyless identities that cannot work and roots that do not exist, by path", () => {
    const problems: string[] = [];
    applyOptions(
      OPTION_DEFAULTS,
      {
        keys: [{ name: "k", pem, trustedRoot: "corp" }],
        keyless: [
          { name: "a", issuer: "https://i", subjectRegExp: "(unclosed" },
          { name: "b", issuer: "https://i", subject: "s", trustedRoot: "nope" },
        ],
      },
      "p.",
      problems,
      ctx,
    );
    expect(problems).toEqual([
      'p.keys[0].trustedRoot: no trusted root is called "corp" (configure it under trustedRoots)',
      expect.stringMatching(/^p\.keyless\[0\]: subjectRegExp does not compile/),
      'p.keyless[1].trustedRoot: no trusted root is called "nope" (configure it under trustedRoots)',
    ]);
    // The schema: exactly one of each pair, and only Fulcio's extension names.
    const bad = (k: unknown) => fileProjectSchema.safeParse({ keyless: [k] }).success;
    expect(bad({ name: "x", issuer: "i", issuerRegExp: "i", subject: "s" })).toBe(false);
    expect(bad({ name: "x", issuer: "i" })).toBe(false);
    expect(bad({ name: "x", issuer: "i", subject: "s", extensions: { madeUp: "1" } })).toBe(false);
    expect(bad({ name: "x", issuer: "i", subject: "s" })).toBe(true);
  });
});
