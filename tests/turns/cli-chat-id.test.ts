/**
 * Review item 16: a bad chat id is the CLI argument's fault, said in CLI words before any
 * request (not "Invalid request body: id: …"), and every `<id>` argument is described.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");
const BIN = join(REPO, "agent-runtime/bin/picortex.mjs");
const cwd = mkdtempSync(join(tmpdir(), "pcx-chat-id-"));
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", env: { PATH: process.env.PATH, HOME: cwd } });

describe("chat id arguments", () => {
  it.each([
    ["create", "Team_Alpha"],
    ["send", "Team_Alpha", "hi"],
    ["budget", "x", "100"],
    ["show", "9lives"],
    ["delete", "team--alpha"],
  ])("chat %s refuses a malformed id with exit 2, naming the grammar", (...args) => {
    const [sub, id] = args;
    const r = run(["chat", ...args]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${JSON.stringify(id)} is not a chat id: use 2-24 lowercase letters, digits and single hyphens, starting with a letter (e.g. team-alpha).`);
    expect(r.stderr).not.toMatch(/request body|No picortex data dir/);
    expect(sub).toBeTruthy();
  }, 60_000);

  it("every <id> argument has a description in --help", () => {
    for (const sub of ["create", "show", "send", "budget", "delete"]) {
      const r = run(["chat", sub, "--help"]);
      expect(r.status).toBe(0);
      expect(r.stdout, sub).toMatch(/id\s+chat id: 2-24 lowercase letters/);
    }
  }, 120_000);
});
