import { type Dispatcher, request } from "undici";
import { computeDigest, type Digest } from "../oci/index.ts";
import type { BuiltArtifact } from "./tiny-image.ts";

/**
 * The few distribution calls that fill a registry, over plain HTTP: monolithic blob uploads
 * (POST /blobs/uploads/, then PUT <location>?digest=), manifest PUTs, and a manifest GET (to append to
 * what is there).
 */

export interface RegistryWriterOptions {
  /** undici dispatcher for every request (e.g. a Pool with many connections); default: undici's global one. */
  dispatcher?: Dispatcher;
  /** HEAD each blob first and skip the upload when the registry has it (default true). */
  skipExistingBlobs?: boolean;
}

type Response = Dispatcher.ResponseData;

export class RegistryWriter {
  readonly url: string;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #skipExistingBlobs: boolean;

  constructor(url: string, opts: RegistryWriterOptions = {}) {
    this.url = url;
    this.#dispatcher = opts.dispatcher;
    this.#skipExistingBlobs = opts.skipExistingBlobs ?? true;
  }

  #send(
    url: string | URL,
    method: Dispatcher.HttpMethod,
    headers: Record<string, string> = {},
    body?: Uint8Array,
  ): Promise<Response> {
    return request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
    });
  }

  /** Uploads `bytes` to `repository` (unless it is there already); returns its digest. */
  async pushBlob(repository: string, bytes: Uint8Array): Promise<Digest> {
    const digest = computeDigest(bytes);
    if (this.#skipExistingBlobs) {
      const head = await this.#send(`${this.url}/v2/${repository}/blobs/${digest}`, "HEAD");
      await head.body.dump();
      if (head.statusCode === 200) return digest;
    }
    const start = await this.#send(`${this.url}/v2/${repository}/blobs/uploads/`, "POST");
    const location = start.headers.location;
    await expectStatus(start, 202, `starting the upload of ${digest} to ${repository}`);
    if (typeof location !== "string")
      throw new Error(`starting the upload to ${repository}: no Location header`);
    const url = new URL(location, this.url);
    url.searchParams.set("digest", digest);
    const put = await this.#send(url, "PUT", { "content-type": "application/octet-stream" }, bytes);
    await expectStatus(put, 201, `uploading ${digest} to ${repository}`);
    return digest;
  }

  /** PUTs a manifest under `reference` (a tag or its digest); returns its digest. */
  async pushManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<Digest> {
    const res = await this.#send(
      `${this.url}/v2/${repository}/manifests/${reference}`,
      "PUT",
      { "content-type": mediaType },
      bytes,
    );
    await expectStatus(res, 201, `pushing the manifest ${repository}:${reference}`);
    return computeDigest(bytes);
  }

  /** The manifest under `reference`, or undefined when the registry has none (404). */
  async getManifest(repository: string, reference: string, accept: string): Promise<Buffer | undefined> {
    const res = await this.#send(`${this.url}/v2/${repository}/manifests/${reference}`, "GET", { accept });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    await expectStatus(res, 200, `getting the manifest ${repository}:${reference}`, false);
    return Buffer.from(await res.body.arrayBuffer());
  }
}

async function expectStatus(res: Response, status: number, what: string, consume = true): Promise<void> {
  if (res.statusCode === status) {
    if (consume) await res.body.dump();
    return;
  }
  const body = (await res.body.text()).slice(0, 300);
  throw new Error(`${what}: registry answered ${res.statusCode} ${body}`);
}

/** Uploads the artifact's blobs, then PUTs its manifest under `reference`. */
export async function pushArtifact(
  writer: RegistryWriter,
  repository: string,
  reference: string,
  artifact: BuiltArtifact,
): Promise<void> {
  for (const blob of artifact.blobs) await writer.pushBlob(repository, blob.bytes);
  await writer.pushManifest(repository, reference, artifact.manifest, artifact.manifestMediaType);
}
