import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SIMPLESIGNING_MEDIA_TYPE } from "../src/verify/index.ts";
import { createPrivateSigstore, type PrivateSigstore } from "../test/support/private-sigstore.ts";
import { pushImagesSignedBy, type SmallImage } from "./images.ts";

/** The project whose policy accepts the release workflow's keyless signatures (repositories `kl/...`). */
export const KEYLESS_PROJECT = "kl";
export const KEYLESS_ISSUER = "https://token.actions.githubusercontent.com";
export const KEYLESS_SUBJECT = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const TRUSTED_ROOT = "corp";

/** A private Sigstore (test/support/private-sigstore.ts) and the pullgate policy that trusts it. */
export type KeylessSigner = {
  sigstore: PrivateSigstore;
  /** `trustedRoots:` of a pullgate config: the private Sigstore's trusted_root.json, written to a file. */
  trustedRoots: Record<string, { path: string }>;
  /** `projects:` of a pullgate config: KEYLESS_PROJECT enforced, the release workflow its one identity. */
  projects: Record<string, unknown>;
};

/** Makes the private Sigstore and writes its trusted root to `dir`/trusted-root.json. */
export async function createKeylessSigner(dir: string): Promise<KeylessSigner> {
  const sigstore = await createPrivateSigstore();
  const path = join(dir, "trusted-root.json");
  await writeFile(path, sigstore.trustedRootJson);
  return {
    sigstore,
    trustedRoots: { [TRUSTED_ROOT]: { path } },
    projects: {
      [KEYLESS_PROJECT]: {
        mode: "enforce",
        keyless: [
          {
            name: "release-workflow",
            issuer: KEYLESS_ISSUER,
            subject: KEYLESS_SUBJECT,
            trustedRoot: TRUSTED_ROOT,
          },
        ],
      },
    },
  };
}

/**
 * `count` distinct small images in `repository` (under KEYLESS_PROJECT), each signed keyless by the release
 * workflow in cosign's legacy `.sig` form: a fresh key and a 10-minute certificate from the private CA (with
 * its SCT), the signature over the simple-signing payload, and the Rekor SET of its hashedrekord entry — one
 * certificate per image, as cosign makes them. Tagged `<tagPrefix><i>` when `tagPrefix` is given.
 */
export function pushKeylessImages(opts: {
  signer: KeylessSigner;
  registryUrl: string;
  repository: string;
  /** Makes the digests of this set differ from every other set's. */
  label: string;
  count: number;
  tagPrefix?: string;
}): Promise<SmallImage[]> {
  if (!opts.repository.startsWith(`${KEYLESS_PROJECT}/`))
    throw new Error(`keyless images go under ${KEYLESS_PROJECT}/, not ${opts.repository}`);
  const { sigstore } = opts.signer;
  return pushImagesSignedBy({
    registryUrl: opts.registryUrl,
    repository: opts.repository,
    label: opts.label,
    count: opts.count,
    ...(opts.tagPrefix === undefined ? {} : { tagPrefix: opts.tagPrefix }),
    signLayer: async (payload, payloadDigest) => ({
      mediaType: SIMPLESIGNING_MEDIA_TYPE,
      size: payload.length,
      digest: payloadDigest,
      annotations: await sigstore.signKeyless(payload, { subject: KEYLESS_SUBJECT, issuer: KEYLESS_ISSUER }),
    }),
  });
}
