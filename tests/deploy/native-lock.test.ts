import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { deriveNativeLock, resolveLockKey, NativeLockError, type Lockfile } from "../../scripts/lib/native-lock.js";

const fixture: Lockfile = {
  lockfileVersion: 3,
  packages: {
    "": { dependencies: {} },
    "agent-runtime": { version: "0.1.0" },
    "node_modules/@picortex/agent-runtime": { link: true, resolved: "agent-runtime" },
    "node_modules/native-a": { version: "1.0.0", resolved: "https://r/a", integrity: "sha512-a", dependencies: { dep: "^2.0.0", shared: "^1" }, hasInstallScript: true, dev: true },
    "node_modules/native-a/node_modules/dep": { version: "2.1.0", resolved: "https://r/dep2", integrity: "sha512-d2" },
    "node_modules/dep": { version: "1.0.0", resolved: "https://r/dep1", integrity: "sha512-d1" },
    "node_modules/shared": { version: "1.2.3", resolved: "https://r/s", integrity: "sha512-s" },
    "agent-runtime/node_modules/native-b": { version: "3.0.0", resolved: "https://r/b", integrity: "sha512-b", optionalDependencies: { missing: "1" } },
  },
};

describe("native lockfile derivation", () => {
  it("resolves like Node: nested node_modules first, then hoisted", () => {
    expect(resolveLockKey(fixture, "node_modules/native-a", "dep")).toBe("node_modules/native-a/node_modules/dep");
    expect(resolveLockKey(fixture, "node_modules/native-a", "shared")).toBe("node_modules/shared");
    expect(resolveLockKey(fixture, "agent-runtime", "native-b")).toBe("agent-runtime/node_modules/native-b");
    expect(resolveLockKey(fixture, "agent-runtime", "native-a")).toBe("node_modules/native-a");
    expect(resolveLockKey(fixture, "agent-runtime", "nope")).toBeUndefined();
  });

  it("keeps the closure with pinned versions, relocated to the release root, dev flags dropped", () => {
    const out = deriveNativeLock(fixture, { name: "rel", version: "9.9.9", modules: ["native-a", "native-b"] });
    expect(out.closure).toEqual([
      "node_modules/dep",
      "node_modules/native-a",
      "node_modules/native-a/node_modules/dep",
      "node_modules/native-b",
      "node_modules/shared",
    ].filter((k) => k !== "node_modules/dep"));
    expect(out.versions).toEqual({ "native-a": "1.0.0", "native-b": "3.0.0" });
    expect(out.packageJson.dependencies).toEqual({ "native-a": "1.0.0", "native-b": "3.0.0" });
    const pkgs = out.packageLock.packages as Record<string, Record<string, unknown>>;
    expect(pkgs[""]).toEqual({ name: "rel", version: "9.9.9", dependencies: { "native-a": "1.0.0", "native-b": "3.0.0" } });
    expect(pkgs["node_modules/native-a"]).toEqual({
      version: "1.0.0",
      resolved: "https://r/a",
      integrity: "sha512-a",
      dependencies: { dep: "^2.0.0", shared: "^1" },
      hasInstallScript: true,
    });
    expect(Object.keys(pkgs)).toEqual(["", ...out.closure]);
  });

  it("fails with an actionable error for a missing module or dependency", () => {
    expect(() => deriveNativeLock(fixture, { name: "r", version: "1", modules: ["ghost"] })).toThrow(/npm install -w agent-runtime ghost/);
    const broken: Lockfile = { lockfileVersion: 3, packages: { "node_modules/x": { version: "1", dependencies: { y: "1" } } } };
    expect(() => deriveNativeLock(broken, { name: "r", version: "1", modules: ["x"] })).toThrow(NativeLockError);
    expect(() => deriveNativeLock({ lockfileVersion: 1, packages: {} }, { name: "r", version: "1" })).toThrow(/lockfileVersion/);
  });

  it("refuses two versions of one package at the same release path", () => {
    const clash: Lockfile = {
      lockfileVersion: 3,
      packages: {
        "node_modules/x": { version: "1.0.0", dependencies: { z: "1" } },
        "node_modules/z": { version: "1.0.0" },
        "agent-runtime/node_modules/y": { version: "1.0.0", dependencies: { z: "2" } },
        "agent-runtime/node_modules/z": { version: "2.0.0" },
      },
    };
    expect(() => deriveNativeLock(clash, { name: "r", version: "1", modules: ["x", "y"] })).toThrow(/two versions/);
  });

  it("derives the real native modules from the repository lockfile", () => {
    const lock = JSON.parse(readFileSync(join(resolve(import.meta.dirname, "../.."), "package-lock.json"), "utf8")) as Lockfile;
    const out = deriveNativeLock(lock, { name: "picortex-release", version: "0.1.0" });
    expect(Object.keys(out.versions)).toEqual(["better-sqlite3", "node-pty"]);
    expect(out.closure).toContain("node_modules/bindings");
    for (const k of out.closure) expect((out.packageLock.packages as Record<string, { integrity?: string }>)[k]!.integrity).toMatch(/^sha512-/);
  });
});
