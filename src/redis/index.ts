// The one home of Redis: the connection, the HMAC that seals every stored entry, and the Redis
// implementations of the verdict cache and policy store ports (which live in cache/ and policy/).
export * from "./connection.ts";
export * from "./deletion-log.ts";
export * from "./entry-mac.ts";
export * from "./policy-store.ts";
export * from "./verdict-cache.ts";
