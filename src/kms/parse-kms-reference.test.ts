import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKmsReference } from "./parse-kms-reference.ts";

const UUID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const GCP = "gcpkms://projects/acme/locations/global/keyRings/ci/cryptoKeys/release";

describe("parseKmsReference: awskms (the forms sigstore's pkg/signature/kms/aws documents)", () => {
  it.each([
    [`awskms:///${UUID}`, { endpoint: undefined, keyId: UUID, region: undefined, form: "key-id" }],
    [`awskms://localhost:4566/${UUID}`, { endpoint: "localhost:4566", keyId: UUID, form: "key-id" }],
    [
      "awskms:///mrk-1234abcd12ab34cd56ef1234567890ab",
      { keyId: "mrk-1234abcd12ab34cd56ef1234567890ab", form: "key-id" },
    ],
    [
      `awskms:///arn:aws:kms:us-east-2:111122223333:key/${UUID}`,
      { keyId: `arn:aws:kms:us-east-2:111122223333:key/${UUID}`, region: "us-east-2", form: "key-arn" },
    ],
    [
      `awskms://localhost:4566/arn:aws:kms:us-east-2:111122223333:key/${UUID}`,
      { endpoint: "localhost:4566", region: "us-east-2", form: "key-arn" },
    ],
    ["awskms:///alias/ExampleAlias", { keyId: "alias/ExampleAlias", region: undefined, form: "alias" }],
    ["awskms://localhost:4566/alias/ExampleAlias", { endpoint: "localhost:4566", form: "alias" }],
    ["awskms:///alias/team/app_key-2", { keyId: "alias/team/app_key-2", form: "alias" }],
    [
      "awskms:///arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias",
      {
        keyId: "arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias",
        region: "us-east-2",
        form: "alias-arn",
      },
    ],
    [`awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/${UUID}`, { region: "us-gov-west-1" }],
    ["awskms:///arn:aws-cn:kms:cn-north-1:111122223333:alias/x", { region: "cn-north-1", form: "alias-arn" }],
    ["awskms://kms.eu-west-1.amazonaws.com/alias/x", { endpoint: "kms.eu-west-1.amazonaws.com" }],
    ["awskms://10.0.0.7:443/alias/x", { endpoint: "10.0.0.7:443" }],
    ["awskms://[::1]:4566/alias/x", { endpoint: "[::1]:4566" }],
  ])("%s", (uri, expected) => {
    expect(parseKmsReference(uri)).toMatchObject({
      provider: "awskms",
      uri,
      ...expectedDefaults(uri),
      ...expected,
    });
  });

  it.each([
    ["awskms://alias/foo", /three slashes \(awskms:\/\/\/alias\/foo\)/],
    [`awskms://${UUID}`, /three slashes/],
    [`awskms://arn:aws:kms:us-east-2:111122223333:key/${UUID}`, /three slashes/],
    ["awskms:///not-a-key", /^kms: awskms references look like /],
    ["awskms:///alias/", /look like/],
    ["awskms:///alias/has space", /look like/],
    ["awskms:///alias/x?y", /look like/],
    [`awskms:///mk-${UUID}`, /look like/],
    [`awskms:///arn:aws:kms:us-east-2:1234:key/${UUID}`, /look like/],
    [`awskms:///arn:aws:s3:us-east-2:111122223333:key/${UUID}`, /look like/],
    [`awskms:///arn:aws:kms:us-east-2:111122223333:key/alias/x`, /look like/],
    ["awskms://user@host/alias/x", /ENDPOINT of an awskms reference is HOST or HOST:PORT/],
    ["awskms://host:99999/alias/x", /HOST:PORT/],
    ["awskms://host:0/alias/x", /HOST:PORT/],
    ["awskms://https:/alias/x", /HOST:PORT/],
    ["awskms:///", /look like/],
  ])("refuses %s", (uri, problem) => {
    const got = parseKmsReference(uri);
    expect(typeof got).toBe("string");
    expect(got).toMatch(problem);
  });
});

function expectedDefaults(uri: string) {
  const rest = uri.slice("awskms://".length);
  const slash = rest.indexOf("/");
  return { endpoint: rest.slice(0, slash) || undefined, keyId: rest.slice(slash + 1), region: undefined };
}

describe("parseKmsReference: gcpkms", () => {
  it("reads a key version, in both spellings cosign accepts", () => {
    const expected = {
      provider: "gcpkms",
      versionName: "projects/acme/locations/global/keyRings/ci/cryptoKeys/release/cryptoKeyVersions/3",
      project: "acme",
      location: "global",
      keyRing: "ci",
      cryptoKey: "release",
      version: "3",
    };
    expect(parseKmsReference(`${GCP}/cryptoKeyVersions/3`)).toEqual({
      ...expected,
      uri: `${GCP}/cryptoKeyVersions/3`,
    });
    expect(parseKmsReference(`${GCP}/versions/3`)).toEqual({ ...expected, uri: `${GCP}/versions/3` });
  });

  it("reads domain-scoped projects, regional locations and ids with _ and -", () => {
    const uri =
      "gcpkms://projects/example.com:app-1/locations/europe-west4/keyRings/ci_ring-2/cryptoKeys/K_1/cryptoKeyVersions/12";
    expect(parseKmsReference(uri)).toMatchObject({
      project: "example.com:app-1",
      location: "europe-west4",
      version: "12",
    });
  });

  it("requires the key version, and says why", () => {
    expect(parseKmsReference(GCP)).toBe(
      "kms: a gcpkms reference must name its key version (gcpkms://projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY/cryptoKeyVersions/VERSION): " +
        "pullgate trusts one fixed version, never whichever version is newest or primary",
    );
  });

  it.each([
    [`${GCP}/cryptoKeyVersions/latest`, /key version is a number/],
    [`${GCP}/cryptoKeyVersions/`, /key version is a number/],
    [`${GCP}/cryptoKeyVersions/01`, /key version is a number/],
    [`${GCP}/cryptoKeyVersions/1/publicKey`, /gcpkms references look like/],
    ["gcpkms://projects/acme/locations/global/keyRings/ci", /gcpkms references look like/],
    ["gcpkms://projects/acme/locations/global/keyRings/c i/cryptoKeys/k/cryptoKeyVersions/1", /look like/],
    ["gcpkms://projects/acme/locations/global/keyRings/ci/cryptoKeys/k%2F/cryptoKeyVersions/1", /look like/],
    ["gcpkms:///projects/acme/locations/global/keyRings/ci/cryptoKeys/k/cryptoKeyVersions/1", /look like/],
  ])("refuses %s", (uri, problem) => {
    expect(parseKmsReference(uri)).toMatch(problem);
  });
});

describe("parseKmsReference: other schemes", () => {
  it.each([
    ["azurekms://myvault.vault.azure.net/mykey", "azurekms"],
    ["hashivault://release", "hashivault"],
    ["k8s://pullgate/cosign-key", "k8s"],
    ["gitlab://group/project", "gitlab"],
    ["pkcs11:token=release;object=key", "pkcs11"],
  ])("%s is not supported, and the words say what to do instead", (uri, scheme) => {
    expect(parseKmsReference(uri)).toBe(
      `kms: ${scheme}: keys (${
        {
          azurekms: "Azure Key Vault",
          hashivault: "HashiCorp Vault",
          k8s: "Kubernetes secret",
          gitlab: "GitLab project variable",
          pkcs11: "PKCS#11 token",
        }[scheme]
      }) are not supported by pullgate (awskms:// and gcpkms:// are); export the public key (cosign public-key --key ${scheme}:…) and configure it as a PEM`,
    );
  });

  it.each([
    "",
    "keys/release.pub",
    "https://kms.example/key",
    "awskms:/alias/x",
    "AWSKMS:///alias/x",
    "gcpkms:projects/x",
  ])("%j is no KMS reference", (uri) => {
    expect(parseKmsReference(uri)).toMatch(/^kms: expected awskms:\/\/… or gcpkms:\/\/… \(/);
  });

  it("refuses references over 2048 characters", () => {
    expect(parseKmsReference(`awskms:///alias/${"a".repeat(2100)}`)).toMatch(/at most 2048 characters/);
  });

  it("never throws, and every problem is config words starting with 'kms: '", () => {
    const prefixes = fc.constantFrom(
      "awskms://",
      "awskms:///",
      "gcpkms://projects/",
      "azurekms://",
      "",
      "awskms:///alias/",
    );
    fc.assert(
      fc.property(prefixes, fc.string({ maxLength: 300 }), (prefix, rest) => {
        const got = parseKmsReference(prefix + rest);
        if (typeof got === "string") expect(got.startsWith("kms: ")).toBe(true);
        else expect(got.uri).toBe(prefix + rest);
      }),
    );
  });
});
