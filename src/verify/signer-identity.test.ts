import { pem } from "@sigstore/core";
import { beforeAll, describe, expect, it } from "vitest";
import { createPrivateSigstore, type PrivateSigstore } from "../../test/support/private-sigstore.ts";
import {
  type CertificateSigner,
  certificateSigner,
  compileSignerIdentity,
  FULCIO_EXTENSIONS,
  matchesIdentity,
} from "./signer-identity.ts";

// What a certificate says about its signer, and how an identity is matched against it.

const GH = "https://token.actions.githubusercontent.com";
const WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1";
let sigstore: PrivateSigstore;

beforeAll(async () => {
  sigstore = await createPrivateSigstore();
});

async function leafOf(claims: Parameters<PrivateSigstore["signKeyless"]>[1]): Promise<CertificateSigner> {
  const annotations = await sigstore.signKeyless(Buffer.from("x"), claims);
  return certificateSigner(pem.toDER(annotations["dev.sigstore.cosign/certificate"] ?? ""));
}

describe("certificateSigner", () => {
  // Fulcio's extensions (fulcio docs/oid-info.md), written out independently of FULCIO_EXTENSIONS:
  // .2–.6 are the deprecated GitHub ones with raw values, .9–.22 DER UTF8Strings.
  const FULCIO_OIDS: Array<[name: string, arc: number]> = [
    ["githubWorkflowTrigger", 2],
    ["githubWorkflowSHA", 3],
    ["githubWorkflowName", 4],
    ["githubWorkflowRepository", 5],
    ["githubWorkflowRef", 6],
    ["buildSignerURI", 9],
    ["buildSignerDigest", 10],
    ["runnerEnvironment", 11],
    ["sourceRepositoryURI", 12],
    ["sourceRepositoryDigest", 13],
    ["sourceRepositoryRef", 14],
    ["sourceRepositoryIdentifier", 15],
    ["sourceRepositoryOwnerURI", 16],
    ["sourceRepositoryOwnerIdentifier", 17],
    ["buildConfigURI", 18],
    ["buildConfigDigest", 19],
    ["buildTrigger", 20],
    ["runInvocationURI", 21],
    ["sourceRepositoryVisibilityAtSigning", 22],
  ];

  it("knows exactly Fulcio's extension names", () => {
    expect(Object.keys(FULCIO_EXTENSIONS).sort()).toEqual(FULCIO_OIDS.map(([n]) => n).sort());
  });

  it("reads every Fulcio extension by its name's OID, raw or DER as Fulcio writes it", async () => {
    const extensions: Record<string, string> = {};
    const rawExtensions: Record<string, string> = {};
    for (const [name, arc] of FULCIO_OIDS) {
      (arc >= 9 ? extensions : rawExtensions)[`1.3.6.1.4.1.57264.1.${arc}`] = `value of ${name}`;
    }
    const signer = await leafOf({ subject: WORKFLOW, issuer: GH, extensions, rawExtensions });
    for (const [name, arc] of FULCIO_OIDS) {
      expect(signer.extensions.get(`1.3.6.1.4.1.57264.1.${arc}`), name).toBe(`value of ${name}`);
      const wanting = (value: string) =>
        compileSignerIdentity({ name: "x", issuer: GH, subject: WORKFLOW, extensions: { [name]: value } });
      expect(matchesIdentity(wanting(`value of ${name}`), signer), name).toBe(true);
      expect(matchesIdentity(wanting("another value"), signer), name).toBe(false);
    }
    expect(signer.extensions.size).toBe(FULCIO_OIDS.length);
  });

  it("matching sees the list of subjects, whichever SAN each came from", () => {
    // A signer with only an otherName SAN is rare; the SAN list is what matching sees.
    const only = {
      subjects: ["user@example.test"],
      issuer: GH,
      extensions: new Map(),
      usage: { digitalSignature: true, codeSigning: true },
    };
    expect(
      matchesIdentity(compileSignerIdentity({ name: "x", issuer: GH, subject: "user@example.test" }), only),
    ).toBe(true);
  });

  it("a DER extension written raw (or a raw one written as DER) is not read as its value", async () => {
    const [derName, derSpec] = Object.entries(FULCIO_EXTENSIONS).find(([, s]) => s.der) ?? [];
    const [rawName, rawSpec] = Object.entries(FULCIO_EXTENSIONS).find(([, s]) => !s.der) ?? [];
    const signer = await leafOf({
      subject: WORKFLOW,
      issuer: GH,
      rawExtensions: { [derSpec?.oid ?? ""]: "plain" },
      extensions: { [rawSpec?.oid ?? ""]: "wrapped" },
    });
    expect(signer.extensions.get(derSpec?.oid ?? ""), derName).toBeUndefined();
    expect(signer.extensions.get(rawSpec?.oid ?? ""), rawName).not.toBe("wrapped");
  });

  it("reads the URI and email SANs as subjects, the issuer, and the usages", async () => {
    const signer = await leafOf({ subject: WORKFLOW, issuer: GH, email: "bot@acme.example" });
    expect(signer.subjects).toEqual([WORKFLOW, "bot@acme.example"]);
    expect(signer.issuer).toBe(GH);
    expect(signer.usage).toEqual({ digitalSignature: true, codeSigning: true });
  });

  it("lists only the SANs the certificate has (no email SAN: one subject)", async () => {
    expect((await leafOf({ subject: WORKFLOW, issuer: GH })).subjects).toEqual([WORKFLOW]);
  });

  it("finds codeSigning among several extended key usages", async () => {
    const annotations = await sigstore.signKeyless(
      Buffer.from("x"),
      { subject: WORKFLOW, issuer: GH },
      {
        otherUsageFirst: true,
      },
    );
    const signer = certificateSigner(pem.toDER(annotations["dev.sigstore.cosign/certificate"] ?? ""));
    expect(signer.usage).toEqual({ digitalSignature: true, codeSigning: true });
  });

  it("reads the DER issuer (.1.8) only as a UTF8String: another string type falls back to .1.1", async () => {
    const ia5 = Buffer.concat([
      Buffer.from([0x16, "https://evil.example".length]),
      Buffer.from("https://evil.example"),
    ]);
    const signer = await leafOf({
      subject: WORKFLOW,
      issuer: GH,
      rawExtensions: { "1.3.6.1.4.1.57264.1.8": ia5.toString("latin1") },
    });
    expect(signer.issuer).toBe(GH);
  });
});

describe("matchesIdentity", () => {
  const signer: CertificateSigner = {
    subjects: ["https://example.test/a", "bot@example.test"],
    issuer: GH,
    extensions: new Map([["1.3.6.1.4.1.57264.1.12", "https://github.com/acme/app"]]),
    usage: { digitalSignature: true, codeSigning: true },
  };
  const id = (spec: Record<string, unknown>) => compileSignerIdentity({ name: "x", issuer: GH, ...spec });

  it("accepts when any subject matches, the issuer matches, and every extension matches", () => {
    expect(matchesIdentity(id({ subject: "bot@example.test" }), signer)).toBe(true);
    expect(matchesIdentity(id({ subjectRegExp: "https://example\\.test/.*" }), signer)).toBe(true);
    expect(matchesIdentity(id({ subject: "nobody@example.test" }), signer)).toBe(false);
    expect(
      matchesIdentity(
        id({
          subject: "bot@example.test",
          extensions: { sourceRepositoryURI: "https://github.com/acme/app" },
        }),
        signer,
      ),
    ).toBe(true);
    expect(
      matchesIdentity(
        id({ subject: "bot@example.test", extensions: { sourceRepositoryRef: "refs/heads/main" } }),
        signer,
      ),
    ).toBe(false);
  });

  it("refuses a certificate without an issuer, and anchors patterns at both ends", () => {
    expect(matchesIdentity(id({ subject: "bot@example.test" }), { ...signer, issuer: undefined })).toBe(
      false,
    );
    // Not even for a pattern that would match the text "undefined".
    expect(
      matchesIdentity(compileSignerIdentity({ name: "x", issuerRegExp: ".*", subject: "bot@example.test" }), {
        ...signer,
        issuer: undefined,
      }),
    ).toBe(false);
    expect(matchesIdentity(id({ subjectRegExp: "bot" }), signer)).toBe(false);
    expect(matchesIdentity(id({ subjectRegExp: "example\\.test" }), signer)).toBe(false);
    expect(
      matchesIdentity(
        compileSignerIdentity({ name: "x", issuerRegExp: "https://token\\..*", subject: "bot@example.test" }),
        signer,
      ),
    ).toBe(true);
    expect(
      matchesIdentity(
        compileSignerIdentity({ name: "x", issuerRegExp: "token", subject: "bot@example.test" }),
        signer,
      ),
    ).toBe(false);
  });

  it("compiles only complete specs, saying what is wrong", () => {
    expect(() => compileSignerIdentity({ name: "x", subject: "s" })).toThrow(
      "give exactly one of issuer or issuerRegExp",
    );
    expect(() => compileSignerIdentity({ name: "x", issuer: "i", issuerRegExp: "i", subject: "s" })).toThrow(
      "give exactly one of issuer or issuerRegExp",
    );
    expect(() => compileSignerIdentity({ name: "x", issuer: "i" })).toThrow(
      "give exactly one of subject or subjectRegExp",
    );
    expect(() => compileSignerIdentity({ name: "x", issuer: "i", subjectRegExp: "(" })).toThrow(
      /^subjectRegExp does not compile: /,
    );
    expect(() =>
      compileSignerIdentity({ name: "x", issuer: "i", subject: "s", extensions: { nope: "1" } }),
    ).toThrow(/^extensions\.nope: not a Fulcio extension \(githubWorkflowTrigger, /);
    // Unicode mode: a pattern is matched by code point.
    expect(compileSignerIdentity({ name: "x", issuer: "i", subjectRegExp: "." }).subject).toEqual(/^(?:.)$/u);
  });
});
