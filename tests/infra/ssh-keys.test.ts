/**
 * components/ssh-keys.ts against the real OpenSSH tools: the keys the stack generates
 * are read by ssh-keygen and sshd, and the public halves it derives match what
 * ssh-keygen derives, for every key kind a user may hold (issue 21 items 6 and 7).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { generateHostKey, hostKeyPublicLine, publicKeyCore, publicKeyOfPrivateKey, SshKeyError } from "../../components/ssh-keys.js";
import { renderHost } from "../../templates/render-host.js";
import { productionVars } from "./fixtures/host-vars.js";
import { requireTools, run } from "./support/tools.js";

let work: string;
beforeAll(() => {
  requireTools("ssh-keygen", "sshd", "cloud-init");
  work = mkdtempSync(join(tmpdir(), "picortex-ssh-keys-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const keygen = (name: string, ...args: string[]) => {
  const path = join(work, name);
  const r = run(["ssh-keygen", "-q", "-C", "test", "-f", path, ...args]);
  expect(r.status, r.stderr).toBe(0);
  return { privateKey: readFileSync(path, "utf8"), publicKey: readFileSync(`${path}.pub`, "utf8") };
};

describe("public half of a private key, as ssh-keygen derives it", () => {
  it.each([
    ["ed25519", ["-t", "ed25519", "-N", ""]],
    ["ed25519 with a passphrase", ["-t", "ed25519", "-N", "correct horse"]],
    ["rsa (OpenSSH format)", ["-t", "rsa", "-b", "2048", "-N", ""]],
    ["rsa (PEM)", ["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]],
    ["ecdsa", ["-t", "ecdsa", "-N", ""]],
  ])("%s", (label, args) => {
    const k = keygen(label.replace(/\W+/g, "-"), ...args);
    const info = publicKeyOfPrivateKey(k.privateKey);
    expect(publicKeyCore(info.publicKey)).toBe(publicKeyCore(k.publicKey));
    expect(info.encrypted).toBe(label.includes("passphrase"));
    const fp = run(["ssh-keygen", "-l", "-E", "sha256", "-f", join(work, `${label.replace(/\W+/g, "-")}.pub`)]).stdout.split(" ")[1];
    expect(info.fingerprint).toBe(fp);
  });

  it("refuses an encrypted PEM key with the conversion command", () => {
    const k = keygen("rsa-pem-enc", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "passphrase");
    expect(() => publicKeyOfPrivateKey(k.privateKey)).toThrow(/ssh-keygen -p -f/);
  });
});

describe("generated host keys", () => {
  it("are OpenSSH Ed25519 keys that ssh-keygen reads and sshd accepts as a host key", () => {
    const k = generateHostKey("picortex-host");
    const path = join(work, "host_ed25519");
    writeFileSync(path, k.privateKey, { mode: 0o600 });
    const r = run(["ssh-keygen", "-y", "-f", path]);
    expect(r.status, r.stderr).toBe(0);
    expect(publicKeyCore(r.stdout)).toBe(publicKeyCore(k.publicKey));
    expect(hostKeyPublicLine(k.privateKey)).toBe(publicKeyCore(k.publicKey));
    // sshd -t loads every HostKey it is given.
    const t = run(["/usr/sbin/sshd", "-t", "-f", "/dev/null", "-h", path, "-o", `PidFile=${join(work, "pid")}`]);
    expect(t.status, t.stderr).toBe(0);
  });

  it("differ every time", () => {
    expect(generateHostKey().privateKey).not.toBe(generateHostKey().privateKey);
  });

  it("refuse a non-Ed25519 or passphrase-protected host key", () => {
    expect(() => hostKeyPublicLine(keygen("host-rsa", "-t", "rsa", "-b", "2048", "-N", "").privateKey)).toThrow(SshKeyError);
    expect(() => hostKeyPublicLine(keygen("host-enc", "-t", "ed25519", "-N", "passphrase").privateKey)).toThrow(/passphrase/);
  });
});

describe("cloud-init ssh_keys", () => {
  it("puts the host key in a cloud-config that passes `cloud-init schema`, and renders nothing extra without one", () => {
    const k = generateHostKey("picortex-host");
    const withKey = renderHost({ ...productionVars, sshHostKey: { privateKey: k.privateKey, publicKey: k.publicKey } }).cloudConfig;
    const doc = parse(withKey);
    expect(doc.ssh_keys).toEqual({ ed25519_private: k.privateKey, ed25519_public: k.publicKey });
    const path = join(work, "user-data.yaml");
    writeFileSync(path, withKey);
    const r = run(["cloud-init", "schema", "--config-file", path, "--annotate"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(renderHost(productionVars).cloudConfig).not.toContain("ssh_keys");
  });
});
