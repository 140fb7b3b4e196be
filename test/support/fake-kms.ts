import { createHash, createHmac, type KeyObject, timingSafeEqual } from "node:crypto";
import { writeFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/**
 * Local stand-ins for the two cloud KMS APIs pullgate reads public keys from, speaking each service's
 * wire protocol closely enough for the real SDKs (@aws-sdk/client-kms, @google-cloud/kms over REST) to
 * talk to them unmodified. Keys are the test's own (node:crypto). Every request is recorded.
 *
 * - AWS KMS: JSON 1.1 (`POST /`, `X-Amz-Target: TrentService.GetPublicKey`), every request's SigV4
 *   signature verified with the test's secret key (a wrong signature gets InvalidSignatureException,
 *   an unknown access key UnrecognizedClientException, as AWS answers).
 * - Google Cloud KMS: REST (`GET /v1/{name}/publicKey`), `Authorization: Bearer` checked against the
 *   token its own STS endpoint (`POST /v1/token`, RFC 8693 token exchange, what an `external_account`
 *   credential file's `token_url` calls) issued for the test's subject token.
 */

/** Answer for one AWS key id, alias or ARN. */
export type FakeAwsEntry =
  | {
      kind: "key";
      /** The key's public half (its SPKI DER is returned). */
      publicKey: KeyObject;
      keyArn: string;
      keySpec: string;
      keyUsage: "SIGN_VERIFY" | "ENCRYPT_DECRYPT";
      signingAlgorithms?: readonly string[];
      /** Replaces PublicKey's base64 (to answer something that is not a key). */
      rawPublicKeyBase64?: string;
    }
  | { kind: "error"; status: number; type: string; message: string }
  | { kind: "hang" };

export interface AwsRequestRecord {
  target: string | undefined;
  keyId: string | undefined;
  accessKeyId: string | undefined;
  /** Region of the SigV4 credential scope. */
  region: string | undefined;
  service: string | undefined;
  signatureValid: boolean;
  host: string | undefined;
}

export interface FakeAwsKms {
  /** host:port, for `awskms://HOST:PORT/…`. */
  readonly endpoint: string;
  /** http(s)://host:port */
  readonly url: string;
  readonly requests: AwsRequestRecord[];
  /** Sets the answer for a KeyId exactly as the client sends it (key id, alias/NAME, or ARN). */
  set(keyId: string, entry: FakeAwsEntry): void;
  delete(keyId: string): void;
  close(): Promise<void>;
}

export interface FakeAwsKmsOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** Serve HTTPS with this certificate (PEM); plain HTTP without. */
  tls?: { cert: string; key: string };
}

const AWS_JSON = "application/x-amz-json-1.1";

export async function startFakeAwsKms(options: FakeAwsKmsOptions): Promise<FakeAwsKms> {
  const entries = new Map<string, FakeAwsEntry>();
  const requests: AwsRequestRecord[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const auth = parseSigV4Authorization(req.headers.authorization);
    let keyId: string | undefined;
    try {
      const parsed = JSON.parse(body.toString("utf8")) as { KeyId?: unknown };
      keyId = typeof parsed.KeyId === "string" ? parsed.KeyId : undefined;
    } catch {
      keyId = undefined;
    }
    const signatureValid =
      auth !== undefined &&
      auth.accessKeyId === options.accessKeyId &&
      verifySigV4(req, body, auth, options.secretAccessKey);
    const target = header(req, "x-amz-target");
    requests.push({
      target,
      keyId,
      accessKeyId: auth?.accessKeyId,
      region: auth?.region,
      service: auth?.service,
      signatureValid,
      host: header(req, "host"),
    });
    const awsError = (status: number, type: string, message: string) => {
      res.writeHead(status, { "content-type": AWS_JSON, "x-amzn-errortype": type });
      res.end(JSON.stringify({ __type: type, message }));
    };
    if (req.method !== "POST" || req.url !== "/") return awsError(404, "UnknownOperationException", "");
    if (header(req, "content-type") !== AWS_JSON) {
      return awsError(400, "SerializationException", "expected application/x-amz-json-1.1");
    }
    if (auth === undefined) return awsError(400, "MissingAuthenticationTokenException", "no signature");
    if (auth.accessKeyId !== options.accessKeyId) {
      return awsError(
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (!signatureValid) {
      return awsError(
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match.",
      );
    }
    if (target !== "TrentService.GetPublicKey") return awsError(400, "UnknownOperationException", "");
    if (keyId === undefined) return awsError(400, "ValidationException", "KeyId is required");
    const entry = entries.get(keyId);
    if (entry === undefined) return awsError(400, "NotFoundException", `Key '${keyId}' does not exist`);
    if (entry.kind === "hang") return; // never answers; close() destroys the socket
    if (entry.kind === "error") return awsError(entry.status, entry.type, entry.message);
    const der = entry.publicKey.export({ type: "spki", format: "der" });
    const answer: Record<string, unknown> = {
      KeyId: entry.keyArn,
      PublicKey: entry.rawPublicKeyBase64 ?? der.toString("base64"),
      KeySpec: entry.keySpec,
      CustomerMasterKeySpec: entry.keySpec,
      KeyUsage: entry.keyUsage,
    };
    if (entry.keyUsage === "SIGN_VERIFY") answer.SigningAlgorithms = entry.signingAlgorithms ?? [];
    else answer.EncryptionAlgorithms = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];
    res.writeHead(200, { "content-type": AWS_JSON });
    res.end(JSON.stringify(answer));
  };

  const server = listen(options.tls, (req, res) => void handle(req, res));
  const port = await listening(server);
  const scheme = options.tls === undefined ? "http" : "https";
  return {
    endpoint: `127.0.0.1:${port}`,
    url: `${scheme}://127.0.0.1:${port}`,
    requests,
    set: (keyId, entry) => void entries.set(keyId, entry),
    delete: (keyId) => void entries.delete(keyId),
    close: () => closeServer(server),
  };
}

/** Answer for one Cloud KMS key version name (projects/…/cryptoKeyVersions/N). */
export type FakeGcpEntry =
  | {
      kind: "key";
      /** The PEM returned (the key's SPKI unless set). */
      pem: string;
      algorithm: string;
      /** The CRC32C sent (as Int64Value JSON); the right one unless set; null: none sent. */
      pemCrc32c?: number | null;
      /** The `name` sent back; the requested name unless set. */
      name?: string;
    }
  | { kind: "error"; httpStatus: number; status: string; message: string }
  | { kind: "hang" };

export interface GcpRequestRecord {
  method: string | undefined;
  path: string;
  authorization: string | undefined;
  /** The key version name asked for, for publicKey requests. */
  name: string | undefined;
}

export interface FakeGcpKms {
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The access token its STS endpoint issues and its KMS endpoint accepts. */
  readonly accessToken: string;
  readonly requests: GcpRequestRecord[];
  /** Token exchanges (the STS endpoint) served so far. */
  readonly tokenRequests: Array<Record<string, string>>;
  set(name: string, entry: FakeGcpEntry): void;
  delete(name: string): void;
  /**
   * Writes an `external_account` (workload identity federation, file-sourced subject token) credential
   * file whose `token_url` is this server, and the subject token file it names; returns the path to put
   * in GOOGLE_APPLICATION_CREDENTIALS.
   */
  writeCredentials(dir: string): Promise<string>;
  close(): Promise<void>;
}

const SUBJECT_TOKEN = "pullgate-test-subject-token";
const AUDIENCE =
  "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/test/providers/test";

export async function startFakeGcpKms(): Promise<FakeGcpKms> {
  const entries = new Map<string, FakeGcpEntry>();
  const requests: GcpRequestRecord[] = [];
  const tokenRequests: Array<Record<string, string>> = [];
  const accessToken = `ya29.test-${createHash("sha256").update(String(Math.random())).digest("hex").slice(0, 24)}`;

  const googleError = (res: ServerResponse, httpStatus: number, status: string, message: string) => {
    res.writeHead(httpStatus, { "content-type": "application/json; charset=UTF-8" });
    res.end(JSON.stringify({ error: { code: httpStatus, message, status } }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://fake");
    if (req.method === "POST" && url.pathname === "/v1/token") {
      const form = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
      tokenRequests.push(form);
      if (
        form.grant_type !== "urn:ietf:params:oauth:grant-type:token-exchange" ||
        form.subject_token !== SUBJECT_TOKEN ||
        form.audience !== AUDIENCE
      ) {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "invalid_grant", error_description: "bad subject token" }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          access_token: accessToken,
          issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
          token_type: "Bearer",
          expires_in: 3600,
        }),
      );
      return;
    }
    const match = /^\/v1\/(projects\/[^?]+\/cryptoKeyVersions\/[^/?]+)\/publicKey$/.exec(url.pathname);
    const name = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    requests.push({
      method: req.method,
      path: url.pathname,
      authorization: header(req, "authorization"),
      name,
    });
    if (req.method !== "GET" || name === undefined)
      return googleError(res, 404, "NOT_FOUND", "no such method");
    if (header(req, "authorization") !== `Bearer ${accessToken}`) {
      return googleError(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    const entry = entries.get(name);
    if (entry === undefined) return googleError(res, 404, "NOT_FOUND", `${name} not found.`);
    if (entry.kind === "hang") return;
    if (entry.kind === "error") return googleError(res, entry.httpStatus, entry.status, entry.message);
    const answer: Record<string, unknown> = {
      pem: entry.pem,
      algorithm: entry.algorithm,
      name: entry.name ?? name,
      protectionLevel: "HSM",
    };
    const crc = entry.pemCrc32c === undefined ? crc32c(Buffer.from(entry.pem, "utf8")) : entry.pemCrc32c;
    if (crc !== null) answer.pemCrc32c = String(crc);
    res.writeHead(200, { "content-type": "application/json; charset=UTF-8" });
    res.end(JSON.stringify(answer));
  };

  const server = listen(undefined, (req, res) => void handle(req, res));
  const port = await listening(server);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    host: "127.0.0.1",
    port,
    accessToken,
    requests,
    tokenRequests,
    set: (name, entry) => void entries.set(name, entry),
    delete: (name) => void entries.delete(name),
    async writeCredentials(dir) {
      const tokenFile = join(dir, "subject-token");
      const credentialsFile = join(dir, "gcp-external-account.json");
      await writeFile(tokenFile, SUBJECT_TOKEN);
      await writeFile(
        credentialsFile,
        JSON.stringify({
          type: "external_account",
          audience: AUDIENCE,
          subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
          token_url: `${url}/v1/token`,
          credential_source: { file: tokenFile },
        }),
      );
      return credentialsFile;
    },
    close: () => closeServer(server),
  };
}

/** CRC32C (Castagnoli), written here independently of src/kms's so the two check each other. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface SigV4Authorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseSigV4Authorization(value: string | undefined): SigV4Authorization | undefined {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      value ?? "",
    );
  if (m === null) return undefined;
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
  return {
    accessKeyId: accessKeyId as string,
    date: date as string,
    region: region as string,
    service: service as string,
    signedHeaders: (signedHeaders as string).split(";"),
    signature: signature as string,
  };
}

/** Recomputes the request's SigV4 signature (AWS's published algorithm) and compares. */
function verifySigV4(req: IncomingMessage, body: Buffer, auth: SigV4Authorization, secret: string): boolean {
  const amzDate = header(req, "x-amz-date");
  if (amzDate === undefined || !amzDate.startsWith(auth.date)) return false;
  if (!auth.signedHeaders.includes("host") || !auth.signedHeaders.includes("x-amz-date")) return false;
  const url = new URL(req.url ?? "/", "http://fake");
  const canonicalHeaders = auth.signedHeaders
    .map((name) => `${name}:${(header(req, name) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const payloadHash = createHash("sha256").update(body).digest("hex");
  const canonicalRequest = [
    req.method,
    url.pathname,
    [...url.searchParams]
      .sort()
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join("&"),
    canonicalHeaders,
    auth.signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secret}`, auth.date), auth.region), auth.service),
    "aws4_request",
  );
  const expected = createHmac("sha256", signingKey).update(stringToSign).digest();
  return timingSafeEqual(expected, Buffer.from(auth.signature, "hex"));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(",") : value;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function listen(
  tls: { cert: string; key: string } | undefined,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
  server.listen(0, "127.0.0.1");
  return server;
}

function listening(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    if (server.listening) resolve((server.address() as AddressInfo).port);
    else server.once("listening", () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
