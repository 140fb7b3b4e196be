import type { AwsKmsReference, GcpKmsReference, KmsReference } from "./types.ts";

/**
 * KMS key references as cosign writes them (`cosign sign --key awskms://…`), read the way sigstore's
 * `pkg/signature/kms/{aws,gcp}` read them, with three deliberate differences:
 * - a gcpkms reference must name its key version: cosign without one signs with the newest enabled
 *   version, which would make the trusted key change under a policy at the next refresh, unannounced;
 * - an awskms ENDPOINT must be a host name or IP address with an optional port, an alias name uses
 *   AWS's alias alphabet, and gcpkms ids use Cloud KMS's (cosign accepts any characters but `/`);
 * - a multi-region key id must spell its prefix `mrk-` (cosign's pattern also lets `m-`, `rk`… through).
 */

export const AWS_KMS_FORMS =
  "awskms://[ENDPOINT]/KEY-ID, awskms://[ENDPOINT]/alias/NAME, " +
  "awskms://[ENDPOINT]/arn:aws:kms:REGION:ACCOUNT:key/KEY-ID or awskms://[ENDPOINT]/arn:aws:kms:REGION:ACCOUNT:alias/NAME " +
  "(without an ENDPOINT: three slashes, awskms:///KEY-ID)";

export const GCP_KMS_FORM =
  "gcpkms://projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY/cryptoKeyVersions/VERSION";

/** Longer than any AWS ARN (2048) or Cloud KMS resource name. */
const MAX_REFERENCE_LENGTH = 2048;

/** Key ids: a UUID (dashes optional, as cosign reads them), or `mrk-` and 32 hex for multi-region keys. */
const KEY_ID = "(?:mrk-)?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}";
/** AWS alias names: `alias/` and letters, digits, `/`, `_`, `-` (256 characters in all at most). */
const ALIAS = "alias/[A-Za-z0-9/_-]{1,250}";
/** The ARN prefix of a KMS resource in the three partitions cosign knows; captures the region. */
const ARN_PREFIX = "arn:(?:aws|aws-us-gov|aws-cn):kms:([a-z0-9-]{1,32}):[0-9]{12}:";

const AWS_KEY_FORMS: ReadonlyArray<{ form: AwsKmsReference["form"]; re: RegExp }> = [
  { form: "key-id", re: new RegExp(`^${KEY_ID}$`) },
  { form: "alias", re: new RegExp(`^${ALIAS}$`) },
  { form: "key-arn", re: new RegExp(`^${ARN_PREFIX}key/${KEY_ID}$`) },
  { form: "alias-arn", re: new RegExp(`^${ARN_PREFIX}${ALIAS}$`) },
];

/** A DNS name or IPv4 address, or a bracketed IPv6 address; an optional port. */
const ENDPOINT_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?$/;

const GCP_RE =
  /^gcpkms:\/\/projects\/([a-z0-9.:-]{1,100})\/locations\/([a-z0-9-]{1,64})\/keyRings\/([A-Za-z0-9_-]{1,63})\/cryptoKeys\/([A-Za-z0-9_-]{1,63})(?:\/(?:cryptoKeyVersions|versions)\/([^/]*))?$/;

/** Schemes cosign (sigstore's kms providers and cosign's key loaders) knows that pullgate does not speak. */
const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  azurekms: "Azure Key Vault",
  hashivault: "HashiCorp Vault",
  k8s: "Kubernetes secret",
  gitlab: "GitLab project variable",
  pkcs11: "PKCS#11 token",
};

/**
 * `uri` → a KmsReference, or the problem in words for a configuration error (starting with "kms: ").
 */
export function parseKmsReference(uri: string): KmsReference | string {
  if (uri.length > MAX_REFERENCE_LENGTH)
    return `kms: a key reference is at most ${MAX_REFERENCE_LENGTH} characters`;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  if (scheme === "awskms" && uri.startsWith("awskms://")) return parseAws(uri);
  if (scheme === "gcpkms" && uri.startsWith("gcpkms://")) return parseGcp(uri);
  const what = scheme === undefined ? undefined : NOT_SUPPORTED[scheme];
  if (what !== undefined) {
    return (
      `kms: ${scheme}: keys (${what}) are not supported by pullgate (awskms:// and gcpkms:// are); ` +
      `export the public key (cosign public-key --key ${scheme}:…) and configure it as a PEM`
    );
  }
  return `kms: expected awskms://… or gcpkms://… (${AWS_KMS_FORMS}; ${GCP_KMS_FORM})`;
}

function parseAws(uri: string): AwsKmsReference | string {
  const rest = uri.slice("awskms://".length);
  const slash = rest.indexOf("/");
  const endpoint = slash < 0 ? rest : rest.slice(0, slash);
  const keyId = slash < 0 ? "" : rest.slice(slash + 1);
  const found = AWS_KEY_FORMS.find(({ re }) => re.test(keyId));
  if (slash < 0 || endpoint === "alias" || endpoint.startsWith("arn:") || found === undefined) {
    const hint =
      slash < 0 || endpoint === "alias" || endpoint.startsWith("arn:")
        ? `; ${JSON.stringify(endpoint)} was read as the ENDPOINT: without one, write three slashes (awskms:///${rest})`
        : "";
    return `kms: awskms references look like ${AWS_KMS_FORMS}${hint}`;
  }
  if (endpoint !== "") {
    const m = ENDPOINT_RE.exec(endpoint);
    const port = m?.[1] === undefined ? undefined : Number(m[1]);
    if (m === null || (port !== undefined && (port < 1 || port > 65535))) {
      return `kms: the ENDPOINT of an awskms reference is HOST or HOST:PORT (spoken to over HTTPS), not ${JSON.stringify(endpoint)}`;
    }
  }
  const region =
    found.form === "key-arn" || found.form === "alias-arn" ? found.re.exec(keyId)?.[1] : undefined;
  return {
    provider: "awskms",
    uri,
    endpoint: endpoint === "" ? undefined : endpoint,
    keyId,
    region,
    form: found.form,
  };
}

function parseGcp(uri: string): GcpKmsReference | string {
  const m = GCP_RE.exec(uri);
  if (m === null) return `kms: gcpkms references look like ${GCP_KMS_FORM}`;
  const [, project, location, keyRing, cryptoKey, version] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === undefined) {
    return (
      `kms: a gcpkms reference must name its key version (${GCP_KMS_FORM}): pullgate trusts one fixed ` +
      "version, never whichever version is newest or primary"
    );
  }
  if (!/^[1-9][0-9]{0,9}$/.test(version)) {
    return `kms: a gcpkms key version is a number (…/cryptoKeyVersions/1), not ${JSON.stringify(version)}`;
  }
  const versionName = `projects/${project}/locations/${location}/keyRings/${keyRing}/cryptoKeys/${cryptoKey}/cryptoKeyVersions/${version}`;
  return { provider: "gcpkms", uri, versionName, project, location, keyRing, cryptoKey, version };
}
