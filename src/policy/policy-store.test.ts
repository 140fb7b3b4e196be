import { policyStoreContract } from "./policy-store.contract.test-helpers.ts";
import { createMemoryPolicyStore } from "./policy-store.ts";

policyStoreContract({ name: "memory", create: async () => createMemoryPolicyStore() });
