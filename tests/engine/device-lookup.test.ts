/**
 * runtimeUrl follows the live tailnet device (issue 21 item 10, second half), on the real
 * engine. The old node's removal is best effort; when it fails (here: the Tailscale API
 * refuses the DELETE), a rebuilt host joins as `picortex-1` while MagicDNS `picortex`
 * still names the dead node. The next `up` finds the live device by lookup (the tailscale
 * provider's getDevices: host name, tags, newest) and points runtimeUrl (and the deploy)
 * at `picortex-1`. Before the fix runtimeUrl stayed `http://picortex:7420`, the dead node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, authKeyIn, expectEmulatorsEmpty, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import { setConfig, type Project } from "./harness/engine.js";

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

const servers = () => f.hz.snapshot().servers as Array<Record<string, any>>;
const TAGS = ["tag:picortex"];

describe.sequential("runtimeUrl follows the live tailnet device", () => {
  let p: Project;
  const STACK = "devices";

  it("first up: no device yet, the configured name; the host joins as picortex", async () => {
    p = await readmeWorkspaceStack(f, STACK, { "picortex:protection": "false" });
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "first up");
    expect(r.outputs?.runtimeUrl?.value).toBe("http://picortex:7420");
    const device = await f.ts.join({ authKey: authKeyIn(f, servers()[0]!.id)!, hostname: "picortex", tags: TAGS, ssh: false });
    expect(device.shortName).toBe("picortex");
  }, 600_000);

  it("a rebuild whose old-node removal fails: the new host joins as picortex-1", async () => {
    const remove = f.ts.fail({ method: "DELETE", path: /^\/api\/v2\/device\//, times: 10, status: 500, message: "internal error" });
    await setConfig(f.lane, p, STACK, "picortex:hostGeneration", "2");
    const r = await f.lane.run(p, STACK, "up");
    remove();
    assertOk(r, "rebuild");
    expect(f.ts.snapshot().devices).toHaveLength(1); // the dead node is still registered
    const device = await f.ts.join({ authKey: authKeyIn(f, servers()[0]!.id)!, hostname: "picortex", tags: TAGS, ssh: false });
    expect(device.shortName).toBe("picortex-1");
  }, 600_000);

  it("the next up points runtimeUrl at the live device, not the dead picortex", async () => {
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "up after the join");
    expect(r.outputs?.runtimeUrl?.value).toBe("http://picortex-1:7420");
    const again = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(again, "up with no change");
    expect(again.outputs?.runtimeUrl?.value).toBe("http://picortex-1:7420");
  }, 600_000);

  it("destroy removes both nodes and leaves nothing", async () => {
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy");
    await expectEmulatorsEmpty(f);
  }, 600_000);
});
