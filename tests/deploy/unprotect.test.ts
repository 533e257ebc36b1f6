/**
 * scripts/unprotect.ts (issue 21 item 3): lifting protection is a config change plus an
 * `up` that targets only the protected resources, so no deploy step runs and the host
 * is never needed. Runs the real script against a fake `pulumi` on PATH that records argv.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { unprotectCommands } from "../../scripts/unprotect.js";

const root = resolve(import.meta.dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "picortex-unprotect-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SERVER = "urn:pulumi:prod::picortex::picortex:host:WorkspaceHost$hcloud:index/server:Server::workspace-server";
const VOLUME = "urn:pulumi:prod::picortex::picortex:host:WorkspaceHost$hcloud:index/volume:Volume::workspace-data";

describe("scripts/unprotect.ts", () => {
  it("sets protection false, then ups only the protected resources, with argument arrays", () => {
    const log = join(work, "argv.log");
    const bin = join(work, "bin");
    spawnSync("mkdir", ["-p", bin]);
    writeFileSync(
      join(bin, "pulumi"),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> "${log}"\ncase "$*" in "stack output protectedUrns"*) printf '%s' '${JSON.stringify([SERVER, VOLUME])}';; esac\n`,
    );
    chmodSync(join(bin, "pulumi"), 0o755);
    const r = spawnSync(join(root, "node_modules/.bin/tsx"), [join(root, "scripts/unprotect.ts"), "--stack", "prod"], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual([
      "config set picortex:protection false --stack prod",
      "stack output protectedUrns --json --stack prod",
      `up --yes --skip-preview --stack prod --target ${SERVER} --target ${VOLUME}`,
    ]);
    expect(r.stderr).toContain("now: pulumi destroy --stack prod");
  });

  it("refuses to run an untargeted up when the output is missing or malformed", () => {
    expect(() => unprotectCommands("prod", undefined)).toThrow(/run `pulumi up` once/);
    expect(() => unprotectCommands("prod", [])).toThrow(/protectedUrns/);
    expect(() => unprotectCommands("prod", ["--yes"])).toThrow(/malformed/);
  });
});
