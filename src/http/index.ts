export { type AccessRecord, accessLog, type ProxyEnv } from "./access-log.ts";
export {
  type ClientAuthenticator,
  type ClientAuthOptions,
  createClientAuthenticator,
} from "./client-auth.ts";
export { parseRegistryPath, type RegistryPath, type RequestKind, splitTarget } from "./parse-request.ts";
export { createProxyApp, type ProxyAppDeps } from "./proxy-app.ts";
export { createPullPermissions, type PullPermissions } from "./pull-permission.ts";
