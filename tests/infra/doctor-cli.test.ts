/**
 * scripts/doctor is split into checks, transport and CLI; the entry (scripts/doctor.ts)
 * still bundles into one file that runs with plain `node` on a host (what `--ssh` pipes
 * there), and the transport forwards every option but its own.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleDoctor } from "../../scripts/doctor.js";
import { forwardedArgs, shQuote } from "../../scripts/doctor/transport.js";

const dir = mkdtempSync(join(tmpdir(), "picortex-doctor-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("doctor bundle and transport", () => {
  it("bundles the entry into one file that runs with plain node: help, and usage errors exit 2", async () => {
    const bundle = await bundleDoctor(join(dir, "doctor.mjs"));
    const help = spawnSync(process.execPath, [bundle, "--help"], { encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("Usage: picortex-doctor");
    expect(help.stdout).toContain("--admin-user <name>      default pcadmin");
    const bad = spawnSync(process.execPath, [bundle, "--admin-user", "root;id"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a valid user\/group name/);
    // Piped on stdin, as --ssh runs it on the host.
    const piped = spawnSync(process.execPath, ["--input-type=module", "-", "--help"], { input: spawnSync("cat", [bundle]).stdout, encoding: "utf8" });
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout).toContain("Usage: picortex-doctor");
  });

  it("forwards every option but the ssh ones, in both spellings", () => {
    expect(forwardedArgs(["--ssh", "pcadmin@h", "--json", "--ssh-port=2222", "--identity", "/k", "--runtime", "--port", "7420"])).toEqual(["--json", "--runtime", "--port", "7420"]);
  });

  it("quotes what the remote shell would otherwise interpret", () => {
    expect(shQuote("--json")).toBe("--json");
    const args = ["$(id)", "a b", "it's", "`id`", ""];
    const r = spawnSync("sh", ["-c", `printf '%s\\n' ${args.map(shQuote).join(" ")}`], { encoding: "utf8" });
    expect(r.stdout).toBe(args.map((a) => `${a}\n`).join(""));
  });
});
