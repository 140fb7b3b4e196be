export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifestV1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerManifestV1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** Every manifest type a registry may serve; the Accept we send when we fetch for ourselves. */
export const ALL_MANIFEST_TYPES: readonly string[] = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
];

/** RFC 6838 media type (type "/" subtype, optional parameters are not allowed in artifactType). */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isValidMediaType(value: string): boolean {
  return MEDIA_TYPE_RE.test(value);
}
