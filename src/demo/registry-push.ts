import type { Blob, BuiltArtifact } from "./tiny-image.ts";

/**
 * The few distribution push calls the demo needs, over plain HTTP: monolithic blob uploads
 * (POST /blobs/uploads/, then PUT <location>?digest=) and a manifest PUT.
 */

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status === status) {
    await res.body?.cancel();
    return;
  }
  const body = (await res.text()).slice(0, 300);
  throw new Error(`${what}: registry answered ${res.status} ${body}`);
}

export async function pushBlob(registryUrl: string, repository: string, blob: Blob): Promise<void> {
  const start = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = start.headers.get("location");
  await expectStatus(start, 202, `starting the upload of ${blob.digest} to ${repository}`);
  if (!location) throw new Error(`starting the upload to ${repository}: no Location header`);
  const url = new URL(location, registryUrl);
  url.searchParams.set("digest", blob.digest);
  const put = await fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: blob.bytes,
  });
  await expectStatus(put, 201, `uploading ${blob.digest} to ${repository}`);
}

/** Uploads the artifact's blobs, then PUTs its manifest under `reference` (a tag). */
export async function pushArtifact(
  registryUrl: string,
  repository: string,
  reference: string,
  artifact: BuiltArtifact,
): Promise<void> {
  for (const blob of artifact.blobs) await pushBlob(registryUrl, repository, blob);
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { "content-type": artifact.manifestMediaType },
    body: artifact.manifest,
  });
  await expectStatus(res, 201, `pushing ${repository}:${reference}`);
}
