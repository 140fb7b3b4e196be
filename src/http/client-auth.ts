import type { ClientAuthConfig } from "../config/index.ts";
import { OciError } from "../oci/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { createClientJwtVerifier, looksLikeJwt } from "./client-jwt-verifier.ts";
import { QueueFullError } from "./concurrency-limit.ts";
import { createHtpasswdVerifier, type HtpasswdVerifierOptions } from "./htpasswd-verifier.ts";

export interface ClientAuthenticator {
  /**
   * The principal (htpasswd user or JWT subject) behind an Authorization header, or an OciError:
   * 401 UNAUTHORIZED with the Basic challenge (missing or wrong credentials), 429 TOOMANYREQUESTS
   * (too many password checks waiting), 503 UNAVAILABLE (the JWKS could not be fetched).
   */
  authenticate(authorization: string | undefined): Promise<string>;
}

/** Test seams and limits for the htpasswd checks (see createHtpasswdVerifier). */
export type ClientAuthOptions = Omit<HtpasswdVerifierOptions, "path" | "entries" | "logger">;

const BASIC = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;
const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/-]+=*)[ \t]*$/i;

/**
 * Client authentication for the /v2 API, or undefined when it is off (no htpasswd and no jwt).
 * Accepted: `Basic` with an htpasswd user, `Basic` with any username and a JWT as the password (what
 * containerd hosts.toml, kubelet credential providers and `podman login` send), and `Bearer <JWT>`.
 * Secrets are never logged or echoed; the messages do not say which part was wrong.
 */
export function createClientAuthenticator(
  config: ClientAuthConfig,
  deps: { logger: Logger },
  options: ClientAuthOptions = {},
): ClientAuthenticator | undefined {
  if (!config.htpasswd && !config.jwt) return undefined;
  const htpasswd = config.htpasswd
    ? createHtpasswdVerifier({ ...options, ...config.htpasswd, logger: deps.logger })
    : undefined;
  const jwt = config.jwt ? createClientJwtVerifier(config.jwt) : undefined;
  const challenge = { "www-authenticate": `Basic realm="${config.realm}"` };
  const unauthorized = (message: string) => new OciError("UNAUTHORIZED", message, { headers: challenge });
  const invalid = () => unauthorized("invalid credentials for pullgate");

  const viaJwt = async (token: string): Promise<string> => {
    const outcome = await (jwt as NonNullable<typeof jwt>).verify(token);
    if (outcome.ok) return outcome.principal;
    if (outcome.reason === "unavailable") {
      deps.logger.log("warn", "client jwt keys unavailable", { jwksUrl: config.jwt?.jwksUrl });
      throw new OciError("UNAVAILABLE", "cannot check the token now: the key set is unavailable", {
        headers: { "retry-after": "5" },
      });
    }
    throw invalid();
  };

  return {
    async authenticate(authorization) {
      if (authorization === undefined || authorization === "") {
        throw unauthorized(
          "authentication required: log in to pullgate (an htpasswd user, or a JWT as the password)",
        );
      }
      const bearer = BEARER.exec(authorization);
      if (bearer) {
        if (!jwt) throw invalid();
        return viaJwt(bearer[1] as string);
      }
      const basic = BASIC.exec(authorization);
      if (!basic) throw invalid();
      const decoded = Buffer.from(basic[1] as string, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw invalid();
      const username = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      if (jwt && looksLikeJwt(password)) return viaJwt(password);
      if (!htpasswd || username === "" || password === "") throw invalid();
      let principal: string | undefined;
      try {
        principal = await htpasswd.verify(username, password);
      } catch (err) {
        if (err instanceof QueueFullError) {
          throw new OciError("TOOMANYREQUESTS", "too many password checks in progress; retry shortly", {
            headers: { "retry-after": "1" },
          });
        }
        throw err;
      }
      if (principal === undefined) throw invalid();
      return principal;
    },
  };
}
