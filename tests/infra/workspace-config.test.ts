/**
 * Stack config: defaults, every rejection with an actionable message, property tests
 * for the validators, and the generated reference in docs/workspace-stack.md.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { hostnameCandidates, hostnameIsValid, labelCandidates, labelIsValid, tagCandidates, tagIsValid } from "./support/spec-oracles.js";
import { readFileSync } from "node:fs";
import {
  CONFIG_KEYS,
  RETIRED_SERVER_TYPES,
  WorkspaceConfigError,
  configReferenceMarkdown,
  parseWorkspaceConfig,
  readWorkspaceConfig,
} from "../../stacks/workspace/config.js";
import { cidrProblem, labelProblem, tailscaleTagProblem, sshPublicKeyProblem, hostnameProblem } from "../../templates/validators.js";
import { buildLabels, InvalidLabelError } from "../../components/labels.js";
import { renderFirewall } from "../../templates/render-firewall.js";
import { TEST_SSH_PUBLIC_KEY } from "./fixtures/host-vars.js";

const base = { sshPublicKey: TEST_SSH_PUBLIC_KEY };
const errorOf = (raw: Record<string, unknown>): string => {
  try {
    parseWorkspaceConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(WorkspaceConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected config ${JSON.stringify(raw).slice(0, 120)} to be rejected`);
};

describe("workspace stack config", () => {
  it("applies the documented defaults", () => {
    expect(parseWorkspaceConfig(base)).toEqual({
      sshPublicKey: TEST_SSH_PUBLIC_KEY,
      serverType: "cx23",
      location: "nbg1",
      image: "ubuntu-24.04",
      hostname: "picortex",
      adminUser: "pcadmin",
      tailscaleTags: ["tag:picortex"],
      tailscaleKeyExpirySeconds: 3600,
      tailscaleSsh: false,
      tailscaleDirectUdp: false,
      sshAllowlist: [],
      allowSshFromAnywhere: false,
      protection: true,
      dataVolumeSizeGb: 20,
      hostGeneration: 1,
      applyTemplateChanges: false,
      existingSshKey: "",
      sshHostPublicKey: "",
      releaseManifest: "",
      deployVia: "tailnet",
      bridges: {},
      labels: {},
    });
    expect(parseWorkspaceConfig({ ...base, image: "debian-12" }).image).toBe("debian-12");
  });

  it("rejects retired server types naming the successor", () => {
    for (const [retired, successor] of Object.entries({ cx22: "cx23", cx32: "cx33", cx42: "cx43", cx11: "cx23" })) {
      expect(errorOf({ ...base, serverType: retired })).toContain(`use its successor "${successor}"`);
    }
    expect(RETIRED_SERVER_TYPES.cx22).toBe("cx23");
    expect(errorOf({ ...base, serverType: "huge" })).toContain("not a Hetzner server type");
  });

  it("refuses a server type the location does not sell, at preview (CX and CAX are EU-only; issue 21 item 18)", () => {
    for (const location of ["ash", "hil", "sin"]) {
      for (const serverType of ["cx23", "cx33", "cax11"]) {
        const msg = errorOf({ ...base, location, serverType });
        expect(msg).toContain(`not sold in ${location}`);
        expect(msg).toContain("EU-only (fsn1, nbg1, hel1)");
      }
      expect(parseWorkspaceConfig({ ...base, location, serverType: "cpx21" }).location).toBe(location);
    }
    // The default type in the default location, and every EU location, stay valid.
    for (const location of ["fsn1", "nbg1", "hel1"]) expect(parseWorkspaceConfig({ ...base, location }).serverType).toBe("cx23");
  });

  it("refuses Tailscale SSH with a deploy over the tailnet: it would take port 22 from sshd (issue 21 item 12)", () => {
    expect(errorOf({ ...base, tailscaleSsh: true, releaseManifest: "dist/release/latest.json" })).toContain("picortex:tailscaleSsh");
    expect(parseWorkspaceConfig({ ...base, tailscaleSsh: true }).tailscaleSsh).toBe(true);
    expect(parseWorkspaceConfig({ ...base, tailscaleSsh: true, releaseManifest: "x.json", deployVia: "public-ip", sshAllowlist: ["203.0.113.7/32"] }).tailscaleSsh).toBe(true);
  });

  it("wants a location, not a datacenter", () => {
    expect(errorOf({ ...base, location: "fsn1-dc14" })).toContain('set the location instead: "fsn1"');
    expect(errorOf({ ...base, location: "mars1" })).toContain("unknown location");
  });

  it("requires a valid SSH public key", () => {
    expect(errorOf({})).toContain("picortex:sshPublicKey: is required");
    expect(errorOf({ sshPublicKey: "ssh-ed25519 AAAAnotreally" })).toContain("picortex:sshPublicKey");
    expect(errorOf({ sshPublicKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----" })).toContain("PRIVATE key");
    expect(errorOf({ sshPublicKey: TEST_SSH_PUBLIC_KEY.replace("ssh-ed25519", "ssh-rsa") })).toContain("damaged");
  });

  it("rejects bad tailscale tags and host names", () => {
    expect(errorOf({ ...base, tailscaleTags: ["picortex"] })).toContain('"tag:<name>"');
    expect(errorOf({ ...base, tailscaleTags: [] })).toContain("at least one tag");
    expect(errorOf({ ...base, hostname: "Bad_Name" })).toContain("host name");
  });

  it("never opens SSH to the internet unless explicitly allowed, and then warns", () => {
    expect(errorOf({ ...base, sshAllowlist: ["0.0.0.0/0"] })).toContain("allowSshFromAnywhere");
    expect(errorOf({ ...base, sshAllowlist: ["::/0"] })).toContain("allowSshFromAnywhere");
    expect(errorOf({ ...base, sshAllowlist: ["203.0.113.7/24"] })).toContain('"203.0.113.0/24"');
    const ok = parseWorkspaceConfig({ ...base, sshAllowlist: ["0.0.0.0/0"], allowSshFromAnywhere: true });
    const fw = renderFirewall(ok);
    expect(fw.warnings.join("\n")).toContain("OPEN TO THE WHOLE INTERNET");
  });

  it("rejects unknown keys, reserved admin names and bad labels", () => {
    expect(errorOf({ ...base, serverTyp: "cx23" })).toContain("picortex:serverTyp is not a known setting: did you mean picortex:serverType?");
    // Nothing close: no guess, the list of settings instead.
    expect(errorOf({ ...base, colour: "blue" })).toMatch(/picortex:colour is not a known setting \(known: sshPublicKey, serverType, .*apiToken.*\)/);
    expect(errorOf({ ...base, adminUser: "pc-admin" })).toContain("reserved for chat users");
    expect(errorOf({ ...base, labels: { "hetzner.cloud/x": "y" } })).toContain("reserved");
    expect(errorOf({ ...base, labels: { ok: "-bad-" } })).toContain("invalid value");
  });

  it("needs public SSH to deploy over the public IP", () => {
    expect(errorOf({ ...base, releaseManifest: "dist/release/latest.json", deployVia: "public-ip" })).toContain("picortex:sshAllowlist");
    expect(parseWorkspaceConfig({ ...base, releaseManifest: "x.json", deployVia: "public-ip", sshAllowlist: ["203.0.113.7/32"] }).deployVia).toBe("public-ip");
  });

  it("lists every problem at once", () => {
    const message = errorOf({ serverType: "cx22", location: "fsn1-dc14" });
    expect(message).toContain("picortex:sshPublicKey");
    expect(message).toContain("picortex:serverType");
    expect(message).toContain("picortex:location");
  });

  it("reads typed values from a Pulumi-style config source (strings and YAML/JSON values)", () => {
    const values: Record<string, string> = { sshPublicKey: TEST_SSH_PUBLIC_KEY, protection: "false", tailscaleTags: '["tag:a"]', tailscaleKeyExpirySeconds: "600" };
    const config = readWorkspaceConfig({ get: (k) => values[k], getObject: <T>(k: string) => (values[k] === undefined ? undefined : (JSON.parse(values[k]!) as T)) });
    expect(config).toMatchObject({ protection: false, tailscaleTags: ["tag:a"], tailscaleKeyExpirySeconds: 600 });
  });

  it("docs/workspace-stack.md carries the current generated reference", () => {
    const doc = readFileSync(new URL("../../docs/workspace-stack.md", import.meta.url), "utf8");
    const between = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(doc)?.[1];
    expect(between, "docs/workspace-stack.md needs the config-reference markers").toBeDefined();
    expect(between, "regenerate with: npm run render -- --config-reference").toBe(configReferenceMarkdown());
  });

  it("Pulumi.example.yaml shows every key (required ones set, the rest at their default, commented)", () => {
    const example = readFileSync(new URL("../../Pulumi.example.yaml", import.meta.url), "utf8");
    for (const key of Object.keys(CONFIG_KEYS)) expect(example, key).toContain(`picortex:${key}:`);
  });
});

describe("validators (property tests)", () => {
  const octet = fc.integer({ min: 0, max: 255 });
  it("a CIDR is accepted iff its host bits are zero, and the suggestion is itself valid", () => {
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), fc.integer({ min: 0, max: 32 }), (o, prefix) => {
        const value = ((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3];
        const hostBits = prefix === 32 ? 0 : value % 2 ** (32 - prefix);
        const problem = cidrProblem(`${o.join(".")}/${prefix}`);
        expect(problem === null).toBe(hostBits === 0);
        if (problem) {
          const suggested = /i\.e\. "([^"]+)"/.exec(problem)?.[1];
          expect(cidrProblem(suggested!)).toBeNull();
        }
      }),
    );
  });
  it("IPv6 CIDRs follow the same rule", () => {
    expect(cidrProblem("2001:db8::/32")).toBeNull();
    expect(cidrProblem("2001:db8::1/64")).toContain('"2001:db8::/64"');
    expect(cidrProblem("::/0")).toBeNull();
    expect(cidrProblem("::ffff:1.2.3.4/128")).toBeNull();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (h) => {
        const addr = h.map((x) => x.toString(16)).join(":");
        expect(cidrProblem(`${addr}/128`)).toBeNull();
        const problem = cidrProblem(`${addr}/16`);
        expect(problem === null).toBe(h.slice(1).every((x) => x === 0));
      }),
    );
  });
  it("no firewall built from a valid allowlist without the flag ever opens SSH to /0", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.tuple(octet, octet, octet, octet), fc.integer({ min: 0, max: 32 }))), (blocks) => {
        const list = blocks.map(([o, p]) => `${o.join(".")}/${p}`).filter((c) => cidrProblem(c) === null);
        let rules;
        try {
          rules = renderFirewall({ sshAllowlist: list, tailscaleDirectUdp: false, allowSshFromAnywhere: false }).rules;
        } catch (err) {
          expect(list.some((c) => c.endsWith("/0"))).toBe(true);
          return;
        }
        for (const r of rules) expect(r.sourceIps.some((s) => s.endsWith("/0"))).toBe(false);
      }),
    );
  });
  // Oracles written from the documented rules (support/spec-oracles.ts); the generators
  // make valid values and one-edit mutations, and the counts prove both sides are hit.
  it("tags: only tag:<letter>[letters digits -] up to 63 characters", () => {
    const seen = { ok: 0, bad: 0 };
    fc.assert(
      fc.property(tagCandidates, (s) => {
        const valid = tagIsValid(s);
        seen[valid ? "ok" : "bad"]++;
        expect(tailscaleTagProblem(s) === null, s).toBe(valid);
      }),
      { numRuns: 500 },
    );
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.bad).toBeGreaterThan(50);
  });
  it("labels: ≤63 characters, alphanumeric ends, hetzner.cloud/ reserved", () => {
    const seen = { ok: 0, bad: 0 };
    fc.assert(
      fc.property(labelCandidates, ([k, v]) => {
        const valid = labelIsValid(k, v);
        seen[valid ? "ok" : "bad"]++;
        expect(labelProblem(k, v) === null, `${k}=${v}`).toBe(valid);
      }),
      { numRuns: 500 },
    );
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.bad).toBeGreaterThan(50);
    expect(labelProblem("a".repeat(64), "x")).not.toBeNull();
    expect(labelProblem("x", "a".repeat(64))).not.toBeNull();
    expect(() => buildLabels("workspace-host", { "hetzner.cloud/thing": "x" })).toThrow(InvalidLabelError);
    expect(buildLabels("workspace-host")).toEqual({ "managed-by": "picortex", "picortex/role": "workspace-host" });
  });
  it("ssh keys and host names", () => {
    expect(sshPublicKeyProblem(TEST_SSH_PUBLIC_KEY)).toBeNull();
    expect(sshPublicKeyProblem(TEST_SSH_PUBLIC_KEY.split(" ").slice(0, 2).join(" "))).toBeNull();
    expect(sshPublicKeyProblem(TEST_SSH_PUBLIC_KEY + "\nssh-ed25519 AAAA")).toContain("single line");
    const seen = { ok: 0, bad: 0 };
    fc.assert(
      fc.property(hostnameCandidates, (h) => {
        const valid = hostnameIsValid(h);
        seen[valid ? "ok" : "bad"]++;
        expect(hostnameProblem(h) === null, h).toBe(valid);
      }),
      { numRuns: 500 },
    );
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.bad).toBeGreaterThan(50);
    expect(hostnameProblem("-x")).not.toBeNull();
  });
});
