/**
 * ServerPower and ServerCreationMarker under recording mocks (issue 21 items 2 and 14): the
 * resource options the engine acts on, per live status. The real-engine proofs are
 * tests/engine/power.test.ts and tests/engine/key-life.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { recordResources, settle, isSecretValue, plain, type RecordedResource } from "../deploy/helpers/recording-mocks.js";
import { ServerPower, RUNNING_TRIGGER, SERVER_POWER_ON_SCRIPT } from "../../components/server-power.js";
import { ServerCreationMarker } from "../../components/server-creation.js";
import { rotationWithCreation } from "../../stacks/workspace/program.js";

const TOKEN = "hz-token-that-must-stay-secret-0123456789abcdef0123456789abcdef01";
let resources: RecordedResource[];
const named = (name: string) => resources.filter((r) => r.name === name);

beforeAll(async () => {
  resources = await recordResources();
  for (const [name, status] of [["off", "off"], ["on", "running"], ["absent", "absent"]] as const) {
    new ServerPower(`power-${name}`, { serverId: "42", serverName: "picortex", liveStatus: status, credentials: { token: TOKEN, endpoint: "http://127.0.0.1:1/v1" } });
  }
  new ServerCreationMarker("creation-absent", { serverExists: false });
  new ServerCreationMarker("creation-present", { serverExists: true });
  await settle();
});

describe("ServerPower (item 2)", () => {
  it("replaces the power-on command with a fresh trigger when the server is off, and keeps state otherwise", () => {
    const [off] = named("power-off-on");
    expect(off!.ignoreChanges).toEqual([]);
    expect(String((plain(off!.inputs.triggers) as string[])[0])).toMatch(/^off, powered on by pulumi up at \d{4}-/);
    for (const n of ["power-on-on", "power-absent-on"]) {
      const [r] = named(n);
      // Not the environment: the real command provider reports an ignored secret map as a change on every up.
      expect(r!.ignoreChanges).toEqual(["triggers"]);
      expect(plain(r!.inputs.triggers)).toEqual([RUNNING_TRIGGER]);
    }
  });

  it("keeps the Hetzner token in the secret environment only: not in argv, the command text or a log line", () => {
    const [off] = named("power-off-on");
    const env = off!.inputs.environment as Record<string, unknown>;
    expect(isSecretValue(env.PICORTEX_HZ_TOKEN) || isSecretValue(env)).toBe(true);
    expect(JSON.stringify(plain(off!.inputs.interpreter))).not.toContain(TOKEN);
    expect(plain(off!.inputs.create)).toBe(SERVER_POWER_ON_SCRIPT);
    expect(SERVER_POWER_ON_SCRIPT).not.toMatch(/console\.(log|error)\([^)]*PICORTEX_HZ_TOKEN/);
    expect(off!.inputs.delete).toBeUndefined();
  });
});

describe("ServerCreationMarker (item 14)", () => {
  it("takes a fresh marker while no server exists, and keeps state once it does", () => {
    const [absent] = named("creation-absent-marker");
    expect(absent!.ignoreChanges).toEqual([]);
    expect(String((plain(absent!.inputs.triggers) as string[])[0])).toMatch(/^server creation attempt \d{4}-/);
    const [present] = named("creation-present-marker");
    expect(present!.ignoreChanges).toEqual(["triggers"]);
    expect(plain(present!.inputs.triggers)).toEqual([""]);
  });

  it("leaves the rotation of a stack without a marker as it was, and changes it per marker", () => {
    expect(rotationWithCreation("0123456789ab", "")).toBe("0123456789ab");
    const a = rotationWithCreation("0123456789ab", "server creation attempt 2026-12-06T23:00:00.000Z");
    const b = rotationWithCreation("0123456789ab", "server creation attempt 2026-12-06T23:00:01.000Z");
    expect(a).toMatch(/^[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });
});

describe("liveTailnetName (item 10)", () => {
  const tags = ["tag:picortex"];
  it("takes the newest tagged device of the host, by its MagicDNS short name", async () => {
    const { liveTailnetName } = await import("../../components/tailnet-address.js");
    expect(liveTailnetName([], "picortex", tags)).toBe("picortex");
    expect(liveTailnetName(undefined, "picortex", tags)).toBe("picortex");
    const devices = [
      { hostname: "picortex", name: "picortex.tail1.ts.net", tags, created: "2026-12-06T10:00:00Z" },
      { hostname: "picortex", name: "picortex-1.tail1.ts.net", tags, created: "2026-12-06T11:00:00Z" },
      // A person's laptop with the same host name, newer, untagged: never the host.
      { hostname: "picortex", name: "picortex-2.tail1.ts.net", tags: [], created: "2026-12-06T12:00:00Z" },
      { hostname: "other", name: "other.tail1.ts.net", tags, created: "2026-12-06T13:00:00Z" },
    ];
    expect(liveTailnetName(devices, "picortex", tags)).toBe("picortex-1");
    // A name that is not a DNS label is not used.
    expect(liveTailnetName([{ hostname: "picortex", name: "bad name.ts.net", tags, created: "2026-12-06T11:00:00Z" }], "picortex", tags)).toBe("picortex");
  });
});
