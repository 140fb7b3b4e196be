import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import { type PolicyStore, RELOAD_ALL } from "./policy-store.ts";

/**
 * The one contract every PolicyStore meets: the memory store runs it in policy-store.test.ts, the
 * Redis store in test/policy-store.test.ts (it needs a redis-server).
 */
export function policyStoreContract(impl: { name: string; create(): Promise<PolicyStore> }): void {
  describe(`PolicyStore contract: ${impl.name}`, () => {
    let store: PolicyStore;
    afterEach(async () => {
      await store?.close();
    });

    test("stores, replaces and removes overrides; load returns them all", async () => {
      store = await impl.create();
      expect(await store.load()).toEqual({});
      await store.put("team-a", { mode: "enforce", keys: ["k1"] });
      await store.put("team-b", { mode: "audit" });
      await store.put("team-a", { mode: "off" });
      expect(await store.load()).toEqual({ "team-a": { mode: "off" }, "team-b": { mode: "audit" } });
      await store.remove("team-a");
      await store.remove("never-stored");
      expect(await store.load()).toEqual({ "team-b": { mode: "audit" } });
    });

    test("values round-trip as JSON and are copies", async () => {
      store = await impl.create();
      const override = { mode: "enforce", nested: { list: [1, "two", null, true] }, unicode: "ünï ✓" };
      await store.put("p", override);
      override.mode = "changed";
      const loaded = (await store.load()) as Record<string, { mode: string }>;
      expect(loaded).toEqual({
        p: { mode: "enforce", nested: { list: [1, "two", null, true] }, unicode: "ünï ✓" },
      });
      if (loaded.p) loaded.p.mode = "mutated";
      expect(((await store.load()) as Record<string, { mode: string }>).p?.mode).toBe("enforce");
    });

    test("listeners hear each change once, before put/remove resolve; unsubscribe stops them", async () => {
      store = await impl.create();
      const heard: string[] = [];
      const off = store.subscribe((p) => heard.push(p));
      const alsoHeard: string[] = [];
      store.subscribe((p) => alsoHeard.push(p));
      await store.put("team-a", { mode: "enforce" });
      expect(heard).toEqual(["team-a"]);
      await store.remove("team-a");
      expect(heard).toEqual(["team-a", "team-a"]);
      off();
      await store.put("team-b", {});
      await sleep(50); // room for a (wrong) second delivery over pub/sub
      expect(heard).toEqual(["team-a", "team-a"]);
      expect(alsoHeard).toEqual(["team-a", "team-a", "team-b"]);
    });

    test("a throwing listener breaks neither the write nor the other listeners", async () => {
      store = await impl.create();
      const heard: string[] = [];
      store.subscribe(() => {
        throw new Error("listener bug");
      });
      store.subscribe((p) => heard.push(p));
      await store.put("p", {});
      expect(heard).toEqual(["p"]);
    });

    test("rejects invalid project names and values that are not JSON", async () => {
      store = await impl.create();
      await expect(store.put("", {})).rejects.toThrow(TypeError);
      await expect(store.put(RELOAD_ALL, {})).rejects.toThrow(TypeError);
      await expect(store.put("p", undefined)).rejects.toThrow(TypeError);
      await expect(store.remove("")).rejects.toThrow(TypeError);
      expect(await store.load()).toEqual({});
    });
  });
}
