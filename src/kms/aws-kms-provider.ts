import { Agent } from "node:https";
import { getCACertificates } from "node:tls";
import type { GetPublicKeyCommandOutput, KMSClient } from "@aws-sdk/client-kms";
import { raceAbort, toAwsKmsError } from "./kms-error-words.ts";
import { derToPem, toKmsPublicKey } from "./kms-public-key.ts";
import {
  type AwsKmsReference,
  DEFAULT_KMS_TIMEOUT_MS,
  KmsError,
  type KmsProvider,
  type KmsPublicKey,
  type KmsReference,
} from "./types.ts";

type AwsSdk = typeof import("@aws-sdk/client-kms");

export interface AwsKmsProviderOptions {
  /** Connection and response timeout of each request (default 10 s). One attempt: the keyring retries. */
  timeoutMs?: number;
  /** The region for references that are not ARNs; default: the SDK's chain (AWS_REGION, config file…). */
  region?: string;
  /**
   * PEM certificates trusted, besides Node's default CAs, for the HTTPS of `awskms://ENDPOINT/…`
   * references (a private endpoint's CA). Never used for AWS's own endpoints.
   */
  endpointCa?: string;
}

/** One KMS client per (endpoint, region); references are bounded by the keyring, this is a backstop. */
const MAX_CLIENTS = 64;

/**
 * `awskms://` references through @aws-sdk/client-kms (loaded on first use): GetPublicKey with the
 * SDK's standard credential chain, over HTTPS to the reference's ENDPOINT when it has one (as cosign),
 * else to the SDK's regional endpoint. The region is the ARN's when the reference is an ARN.
 */
export function createAwsKmsProvider(options: AwsKmsProviderOptions = {}): KmsProvider {
  const timeoutMs = options.timeoutMs ?? DEFAULT_KMS_TIMEOUT_MS;
  let sdk: Promise<AwsSdk> | undefined;
  let endpointAgent: Agent | undefined;
  const clients = new Map<string, KMSClient>();

  const clientFor = (loaded: AwsSdk, ref: AwsKmsReference): KMSClient => {
    const region = ref.region ?? options.region;
    const key = `${ref.endpoint ?? ""}\n${region ?? ""}`;
    const existing = clients.get(key);
    if (existing !== undefined) return existing;
    if (clients.size >= MAX_CLIENTS) {
      const [oldestKey, oldest] = clients.entries().next().value as [string, KMSClient];
      clients.delete(oldestKey);
      oldest.destroy();
    }
    if (ref.endpoint !== undefined && options.endpointCa !== undefined) {
      endpointAgent ??= new Agent({
        keepAlive: true,
        ca: [...getCACertificates("default"), options.endpointCa],
      });
    }
    const client = new loaded.KMSClient({
      ...(region === undefined ? {} : { region }),
      ...(ref.endpoint === undefined ? {} : { endpoint: `https://${ref.endpoint}` }),
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: timeoutMs,
        requestTimeout: timeoutMs,
        throwOnRequestTimeout: true,
        ...(ref.endpoint !== undefined && endpointAgent !== undefined ? { httpsAgent: endpointAgent } : {}),
      },
    });
    clients.set(key, client);
    return client;
  };

  const fetchAws = async (ref: AwsKmsReference, signal: AbortSignal): Promise<KmsPublicKey> => {
    sdk ??= import("@aws-sdk/client-kms");
    let loaded: AwsSdk;
    try {
      loaded = await sdk;
    } catch {
      sdk = undefined;
      throw new KmsError("FAILED", ref.uri, "the AWS SDK (@aws-sdk/client-kms) could not be loaded");
    }
    const client = clientFor(loaded, ref);
    try {
      await client.config.region();
    } catch {
      throw new KmsError(
        "NO_REGION",
        ref.uri,
        "no AWS region: set AWS_REGION (or a region in the AWS config file), or reference the key by its ARN",
      );
    }
    const out = await client.send(new loaded.GetPublicKeyCommand({ KeyId: ref.keyId }), {
      abortSignal: signal,
    });
    return toAwsPublicKey(ref, out);
  };

  return {
    async fetchPublicKey(ref: KmsReference, signal: AbortSignal): Promise<KmsPublicKey> {
      if (ref.provider !== "awskms") throw new KmsError("FAILED", ref.uri, "not an awskms reference");
      try {
        return await raceAbort(
          fetchAws(ref, signal),
          signal,
          () => new KmsError("TIMEOUT", ref.uri, `no answer within ${timeoutMs} ms`),
        );
      } catch (err) {
        throw toAwsKmsError(ref.uri, err, timeoutMs);
      }
    },
    close() {
      for (const client of clients.values()) client.destroy();
      clients.clear();
      endpointAgent?.destroy();
      endpointAgent = undefined;
    },
  };
}

/** Key ids compare without case or dashes (cosign lets dashes be left out). */
const sameKeyId = (a: string, b: string) =>
  a.replaceAll("-", "").toLowerCase() === b.replaceAll("-", "").toLowerCase();

function toAwsPublicKey(ref: AwsKmsReference, out: GetPublicKeyCommandOutput): KmsPublicKey {
  if (out.KeyUsage !== "SIGN_VERIFY") {
    const usage = /^[A-Z_]{1,32}$/.test(out.KeyUsage ?? "") ? out.KeyUsage : "missing";
    throw new KmsError("WRONG_KEY", ref.uri, `key usage is ${usage}, not SIGN_VERIFY`);
  }
  // The answer names the key ARN: for a key id or key ARN it must be the key asked for.
  const answered = out.KeyId;
  if (answered !== undefined) {
    const mismatch =
      (ref.form === "key-arn" && answered !== ref.keyId) ||
      (ref.form === "key-id" && !sameKeyId(answered.slice(answered.lastIndexOf("key/") + 4), ref.keyId));
    if (mismatch) throw new KmsError("BAD_RESPONSE", ref.uri, "the KMS answered for another key");
  }
  if (out.PublicKey === undefined || out.PublicKey.length === 0) {
    throw new KmsError("BAD_RESPONSE", ref.uri, "the KMS answered without a public key");
  }
  return toKmsPublicKey(ref.uri, derToPem(out.PublicKey), out.SigningAlgorithms ?? []);
}
