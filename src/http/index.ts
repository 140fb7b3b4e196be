export { type AccessRecord, accessLog } from "./access-log.ts";
export {
  type ClientAuthenticator,
  type ClientAuthOptions,
  createClientAuthenticator,
} from "./client-auth.ts";
export { parseRegistryPath, type RegistryPath, type RequestKind, splitTarget } from "./parse-request.ts";
export { createProxyApp, type ProxyAppDeps, type ProxyEnv } from "./proxy-app.ts";
export { createPullPermissions, type PullPermissions } from "./pull-permission.ts";
export { API_VERSION_HEADER, renderError, toOciError } from "./render-error.ts";
