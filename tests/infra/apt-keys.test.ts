/**
 * Pinned apt signing keys (issue 21 item 20): first boot trusts a downloaded repository
 * key only if the file holds exactly the one pinned key. The check runs for real here,
 * with real gpg and keys made for the test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { NODESOURCE_KEY_FINGERPRINT, TAILSCALE_KEY_FINGERPRINT, VERIFY_KEY_SCRIPT } from "../../templates/render-apt-sources.js";
import { NODESOURCE_KEYRING, TAILSCALE_KEYRING } from "../../agent-runtime/host/contract.js";
import { renderHost } from "../../templates/render-host.js";
import { productionVars } from "./fixtures/host-vars.js";
import { requireTools, run } from "./support/tools.js";

let work: string;
let gnupg: string;
const keys: Record<string, { fpr: string; armored: string; binary: Buffer }> = {};

function makeKey(name: string) {
  const r = run(["gpg", "--homedir", gnupg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", `${name} <${name}@example.invalid>`, "ed25519", "sign", "never"]);
  expect(r.status, r.stderr).toBe(0);
  const list = run(["gpg", "--homedir", gnupg, "--with-colons", "--list-keys", `${name}@example.invalid`]).stdout;
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(list)![1]!;
  const armored = run(["gpg", "--homedir", gnupg, "--armor", "--export", fpr]).stdout;
  keys[name] = { fpr, armored, binary: Buffer.alloc(0) };
}

beforeAll(() => {
  requireTools("gpg", "awk", "sh");
  work = mkdtempSync(join(tmpdir(), "picortex-apt-keys-"));
  gnupg = join(work, "gnupg");
  run(["mkdir", "-m", "0700", gnupg]);
  makeKey("repo");
  makeKey("attacker");
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const verify = (file: string, fpr: string) => run(["sh", "-c", VERIFY_KEY_SCRIPT, "verify-key", file, fpr]);

describe("pinned repository signing keys", () => {
  it("accepts exactly the pinned key, armored or binary", () => {
    const asc = join(work, "repo.asc");
    writeFileSync(asc, keys.repo!.armored);
    expect(verify(asc, keys.repo!.fpr).status).toBe(0);
    expect(existsSync(asc)).toBe(true);
    const bin = join(work, "repo.gpg");
    expect(run(["gpg", "--homedir", gnupg, "--batch", "--yes", "--output", bin, "--export", keys.repo!.fpr]).status).toBe(0);
    expect(verify(bin, keys.repo!.fpr).status).toBe(0);
  });

  it("refuses and deletes another key, a key bundled with the right one, or garbage", () => {
    for (const [name, content] of [
      ["other.asc", keys.attacker!.armored],
      ["both.asc", keys.repo!.armored + keys.attacker!.armored],
      ["html.asc", "<html>captive portal</html>"],
    ] as const) {
      const f = join(work, name);
      writeFileSync(f, content);
      const r = verify(f, keys.repo!.fpr);
      expect(r.status, name).toBe(1);
      expect(r.stderr).toContain("not the pinned signing key");
      expect(existsSync(f), name).toBe(false);
    }
  });

  it("runs right after each key download on first boot, before its apt source is installed", () => {
    const steps = (parse(renderHost(productionVars).cloudConfig).runcmd as Array<string | string[]>).map((s) => (Array.isArray(s) ? s : [s]));
    for (const [keyring, fpr, source] of [
      [TAILSCALE_KEYRING, TAILSCALE_KEY_FINGERPRINT, "tailscale.sources"],
      [NODESOURCE_KEYRING, NODESOURCE_KEY_FINGERPRINT, "nodesource.sources"],
    ] as const) {
      const download = steps.findIndex((s) => s[0] === "curl" && s.includes(keyring));
      expect(steps[download + 1]).toEqual(["sh", "-c", VERIFY_KEY_SCRIPT, "verify-key", keyring, fpr]);
      expect(steps[download + 2]!.join(" ")).toContain(source);
    }
    expect(readFileSync(new URL("../../templates/render-apt-sources.ts", import.meta.url), "utf8")).toContain(TAILSCALE_KEY_FINGERPRINT);
  });
});
