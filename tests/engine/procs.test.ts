/**
 * The lane finds its own plugin processes after a kill -9 of the CLI (faults.test.ts):
 * the doubles by their --picortex-lane marker, a real provider (no marker) by running from
 * the lane's PULUMI_HOME. A real provider orphaned by the fault scenario was left running
 * before this look-up knew the second kind.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killPids, lanePluginPids } from "./harness/procs.js";

const started: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of started.splice(0)) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakePlugin(lane: string): ChildProcess {
  const dir = join(lane, "pulumi-home/plugins/resource-hcloud-v1.41.0");
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, "pulumi-resource-hcloud");
  copyFileSync("/bin/sleep", bin);
  const c = spawn(bin, ["30"], { stdio: "ignore" });
  started.push(c);
  return c;
}

describe("lane plugin processes", () => {
  it("finds a real provider running from the lane's PULUMI_HOME, and only this lane's", async () => {
    const lane = mkdtempSync(join(tmpdir(), "picortex-engine-procs-"));
    const other = mkdtempSync(join(tmpdir(), "picortex-engine-procs-"));
    dirs.push(lane, other);
    const mine = fakePlugin(lane);
    const theirs = fakePlugin(other);
    await new Promise((r) => setTimeout(r, 200));
    const found = lanePluginPids(lane);
    expect(found).toContain(mine.pid);
    expect(found).not.toContain(theirs.pid);
    const exited = new Promise((r) => mine.once("exit", r));
    killPids(found);
    await exited;
  });
});
