import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { PGI_ROOT, vectorText } from "../../test/support/vectors.ts";
import { compileSignerIdentity, parseTrustedKey, parseTrustRoot } from "../verify/index.ts";
import { policyFingerprint } from "./policy-fingerprint.ts";
import {
  NOT_IN_FINGERPRINT,
  OPTION_DEFAULTS,
  PROJECT_OPTION_NAMES,
  type ProjectOptionName,
  type ProjectOptions,
} from "./project-options.ts";

const publicGood = parseTrustRoot(
  "public-good",
  readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
);
const olderRoot = parseTrustRoot("public-good", vectorText(PGI_ROOT));
const key = (name: string): ProjectOptions["keys"][number] => ({
  kind: "key",
  name,
  key: parseTrustedKey({ name, pem: generateTestKey().publicKeyPem }),
  transparencyLog: "required",
  root: publicGood,
});
const k1 = key("k1");
const k2 = key("k2");
const identity = (subject: string, root = publicGood): ProjectOptions["keyless"][number] => ({
  kind: "keyless",
  name: "ci",
  identity: compileSignerIdentity({
    name: "ci",
    issuer: "https://token.actions.githubusercontent.com",
    subject,
  }),
  root,
});
const ci = identity("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1");

const base: ProjectOptions = {
  ...OPTION_DEFAULTS,
  mode: "enforce",
  keys: [k1],
  keyless: [ci],
  exempt: ["team/tools/*"],
  upstreams: ["hub"],
};

/**
 * For every option, another value than `base` has. Adding an option to the table without adding
 * it here fails the coverage test below: the new option must be shown to move the fingerprint
 * (or be listed, with its reason, in NOT_IN_FINGERPRINT).
 */
const changed: { [K in ProjectOptionName]: ProjectOptions[K] } = {
  mode: "audit",
  keys: [k1, k2],
  keyless: [identity("https://github.com/acme/app/.github/workflows/other.yml@refs/tags/v1")],
  threshold: 2,
  requiredSigners: ["ci"],
  annotations: { project: "prod" },
  attestations: [
    { name: "provenance", predicateType: "https://slsa.dev/provenance/v1", compiled: undefined },
  ],
  exempt: ["team/tools/*", "team/vendor/**"],
  signatureRepository: "team/signatures",
  onLookupError: "allow",
  gateHead: true,
  strictBlobs: true,
  matchRepository: true,
  upstreams: ["*"],
  pull: ["ci-*"],
};

describe("policy fingerprint", () => {
  it("the test covers every option of the table", () => {
    expect(Object.keys(changed).sort()).toEqual([...PROJECT_OPTION_NAMES].sort());
  });

  it.each(PROJECT_OPTION_NAMES)(
    "changes when %s changes, unless the option is declared not to matter",
    (name) => {
      const before = policyFingerprint("team", base);
      const after = policyFingerprint("team", { ...base, [name]: changed[name] });
      expect(changed[name]).not.toEqual(base[name]);
      if (Object.hasOwn(NOT_IN_FINGERPRINT, name)) expect(after).toBe(before);
      else expect(after).not.toBe(before);
    },
  );

  it("changes with the project, and for a key swapped for another under the same name", () => {
    expect(policyFingerprint("other", base)).not.toBe(policyFingerprint("team", base));
    const swapped = { ...k2, name: "k1" };
    expect(policyFingerprint("team", { ...base, keys: [swapped] })).not.toBe(policyFingerprint("team", base));
  });

  it("changes with a key's log rule and with its trusted root's content, not with names", () => {
    const fp = (p: ProjectOptions) => policyFingerprint("team", p);
    expect(fp({ ...base, keys: [{ ...k1, transparencyLog: "optional" }] })).not.toBe(fp(base));
    expect(fp({ ...base, keys: [{ ...k1, root: olderRoot }] })).not.toBe(fp(base));
    expect(fp({ ...base, keyless: [{ ...ci, root: olderRoot }] })).not.toBe(fp(base));
    expect(fp({ ...base, keyless: [{ ...ci, name: "renamed" }] })).toBe(fp(base));
  });

  it("treats lists as sets: order does not matter", () => {
    const a = { ...base, keys: [k1, k2], exempt: ["b/*", "a/*"], upstreams: ["x", "y"] };
    const b = { ...base, keys: [k2, k1], exempt: ["a/*", "b/*"], upstreams: ["y", "x"] };
    expect(policyFingerprint("team", a)).toBe(policyFingerprint("team", b));
  });
});
