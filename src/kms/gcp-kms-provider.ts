import type { KeyManagementServiceClient, protos } from "@google-cloud/kms";
import { crc32c } from "./crc32c.ts";
import { raceAbort, toGcpCredentialsError, toGcpKmsError, toGcpTokenError } from "./kms-error-words.ts";
import { toKmsPublicKey } from "./kms-public-key.ts";
import {
  DEFAULT_KMS_TIMEOUT_MS,
  type GcpKmsReference,
  KmsError,
  type KmsProvider,
  type KmsPublicKey,
  type KmsReference,
} from "./types.ts";

type GcpSdk = typeof import("@google-cloud/kms");
type PublicKeyAnswer = protos.google.cloud.kms.v1.IPublicKey;

export interface GcpKmsProviderOptions {
  /** Deadline of each getPublicKey call (default 10 s). One attempt: the keyring retries. */
  timeoutMs?: number;
  /** Another Cloud KMS endpoint (host name; e.g. a Private Service Connect one); default cloudkms.googleapis.com. */
  apiEndpoint?: string;
  port?: number;
  /** "https" (default). "http" only for a local endpoint (the tests' fake). */
  protocol?: "https" | "http";
}

/** One client per project (see clientFor); references are bounded by the keyring, this is a backstop. */
const MAX_CLIENTS = 64;

/** Signing algorithms of Cloud KMS (EC_SIGN_P256_SHA256, RSA_SIGN_PSS_3072_SHA256, PQ_SIGN_…). */
const SIGNING_ALGORITHM = /^(?:EC|RSA|PQ)_SIGN_[A-Z0-9_]{1,48}$/;

/**
 * `gcpkms://` references through @google-cloud/kms (loaded on first use) over its REST transport
 * (HTTP/1.1 JSON, the transport the tests speak to), with Google's application default credentials
 * (GOOGLE_APPLICATION_CREDENTIALS: service account, workload identity federation, authorized user;
 * or the metadata server). The answer must name the version asked for, be a signing key's, and match
 * its CRC32C when it carries one.
 */
export function createGcpKmsProvider(options: GcpKmsProviderOptions = {}): KmsProvider {
  const timeoutMs = options.timeoutMs ?? DEFAULT_KMS_TIMEOUT_MS;
  let sdk: Promise<GcpSdk> | undefined;
  const clients = new Map<string, Promise<KeyManagementServiceClient>>();

  const closeClient = (client: Promise<KeyManagementServiceClient>) => {
    client.then((c) => c.close()).catch(() => {});
  };

  /**
   * A client per project, initialized (credentials found) before its first call. The project is the
   * key's: with it set, the auth library never looks the project up (for an external account it
   * would ask Cloud Resource Manager, a permission the key's reader need not have). A client whose
   * initialization failed is dropped: the library keeps its failed stub forever, and rethrows its
   * failure as an unhandled rejection on every call made through it.
   */
  const clientFor = (loaded: GcpSdk, ref: GcpKmsReference): Promise<KeyManagementServiceClient> => {
    const existing = clients.get(ref.project);
    if (existing !== undefined) return existing;
    if (clients.size >= MAX_CLIENTS) {
      const [oldestKey, oldest] = clients.entries().next().value as [
        string,
        Promise<KeyManagementServiceClient>,
      ];
      clients.delete(oldestKey);
      closeClient(oldest);
    }
    const created = (async () => {
      const client = new loaded.KeyManagementServiceClient({
        fallback: true,
        projectId: ref.project,
        ...(options.apiEndpoint === undefined ? {} : { apiEndpoint: options.apiEndpoint }),
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
      });
      try {
        await client.initialize();
      } catch (err) {
        client.close().catch(() => {});
        throw toGcpCredentialsError(ref.uri, err);
      }
      return client;
    })();
    clients.set(ref.project, created);
    created.catch(() => {
      if (clients.get(ref.project) === created) clients.delete(ref.project);
    });
    return created;
  };

  const fetchGcp = async (ref: GcpKmsReference): Promise<KmsPublicKey> => {
    sdk ??= import("@google-cloud/kms");
    let loaded: GcpSdk;
    try {
      loaded = await sdk;
    } catch {
      sdk = undefined;
      throw new KmsError(
        "FAILED",
        ref.uri,
        "the Google Cloud KMS SDK (@google-cloud/kms) could not be loaded",
      );
    }
    const client = await clientFor(loaded, ref);
    // The access token first (cached by the auth library until it expires): a token that cannot be
    // had is a credentials problem, which the KMS call would report as the token endpoint's HTTP status.
    try {
      await client.auth.getAccessToken();
    } catch (err) {
      throw toGcpTokenError(ref.uri, err);
    }
    let answer: PublicKeyAnswer;
    try {
      // No retry (the keyring retries): with google-gax's retries an UNAVAILABLE would end as DEADLINE_EXCEEDED.
      [answer] = await client.getPublicKey({ name: ref.versionName }, { timeout: timeoutMs, retry: null });
    } catch (err) {
      throw toGcpKmsError(ref.uri, err, timeoutMs);
    }
    return toGcpPublicKey(ref, answer);
  };

  return {
    async fetchPublicKey(ref: KmsReference, signal: AbortSignal): Promise<KmsPublicKey> {
      if (ref.provider !== "gcpkms") throw new KmsError("FAILED", ref.uri, "not a gcpkms reference");
      try {
        return await raceAbort(
          fetchGcp(ref),
          signal,
          () => new KmsError("TIMEOUT", ref.uri, `no answer within ${timeoutMs} ms`),
        );
      } catch (err) {
        throw toGcpKmsError(ref.uri, err, timeoutMs);
      }
    },
    close() {
      for (const client of clients.values()) closeClient(client);
      clients.clear();
    },
  };
}

function toGcpPublicKey(ref: GcpKmsReference, answer: PublicKeyAnswer): KmsPublicKey {
  if (answer.name !== ref.versionName) {
    throw new KmsError("BAD_RESPONSE", ref.uri, "the KMS answered for another key version");
  }
  const algorithm = String(answer.algorithm ?? "");
  if (!SIGNING_ALGORITHM.test(algorithm)) {
    const shown = /^[A-Z0-9_]{1,64}$/.test(algorithm) ? algorithm : "unknown";
    throw new KmsError("WRONG_KEY", ref.uri, `not an asymmetric signing key (algorithm ${shown})`);
  }
  const pem = answer.pem ?? "";
  if (pem === "") throw new KmsError("BAD_RESPONSE", ref.uri, "the KMS answered without a PEM");
  const sent = answer.pemCrc32c?.value;
  if (sent !== undefined && sent !== null && Number(String(sent)) !== crc32c(Buffer.from(pem, "utf8"))) {
    throw new KmsError("BAD_RESPONSE", ref.uri, "the PEM failed its CRC32C check (corrupted in transit)");
  }
  return toKmsPublicKey(ref.uri, pem, [algorithm]);
}
