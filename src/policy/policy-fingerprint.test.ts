import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { parseTrustedKey } from "../verify/index.ts";
import { policyFingerprint } from "./policy-fingerprint.ts";
import {
  NOT_IN_FINGERPRINT,
  OPTION_DEFAULTS,
  PROJECT_OPTION_NAMES,
  type ProjectOptionName,
  type ProjectOptions,
} from "./project-options.ts";

const key = (name: string) => parseTrustedKey({ name, pem: generateTestKey().publicKeyPem });
const k1 = key("k1");
const k2 = key("k2");

const base: ProjectOptions = {
  ...OPTION_DEFAULTS,
  mode: "enforce",
  keys: [k1],
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

  it("treats lists as sets: order does not matter", () => {
    const a = { ...base, keys: [k1, k2], exempt: ["b/*", "a/*"], upstreams: ["x", "y"] };
    const b = { ...base, keys: [k2, k1], exempt: ["a/*", "b/*"], upstreams: ["y", "x"] };
    expect(policyFingerprint("team", a)).toBe(policyFingerprint("team", b));
  });

  // A new option that matters to verdicts changes every fingerprint (cached verdicts then become
  // unreachable, as they must): add it here. Until then, caches survive an upgrade.
  it("is the v1 fingerprint earlier releases computed, so cached verdicts survive the upgrade", () => {
    const p = { ...base, keys: [k2, k1], signatureRepository: "team/sigs", matchRepository: true };
    const v1 = JSON.stringify({
      v: 1,
      project: "team",
      mode: p.mode,
      keys: p.keys.map((k) => k.fingerprint).sort(),
      exempt: [...p.exempt].sort(),
      signatureRepository: p.signatureRepository ?? null,
      onLookupError: p.onLookupError,
      strictBlobs: p.strictBlobs,
      matchRepository: p.matchRepository,
      upstreams: [...p.upstreams].sort(),
    });
    expect(policyFingerprint("team", p)).toBe(createHash("sha256").update(v1).digest("hex").slice(0, 32));
  });
});
