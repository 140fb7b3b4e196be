export * from "./bounded-lru.ts";
export * from "./manifest-cache.ts";
export * from "./memory-verdict-cache.ts";
export * from "./tiered-verdict-cache.ts";
export * from "./types.ts";
