import { createMemoryVerdictCache } from "./memory-verdict-cache.ts";
import { verdictCacheContract } from "./verdict-cache.contract.test-helpers.ts";

verdictCacheContract({ name: "memory", tierAfterSet: "memory", create: () => createMemoryVerdictCache() });
