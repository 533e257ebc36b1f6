/**
 * The provider doubles' contract rules that recordings/deploy.jsonl (the booted-host deploy
 * run against the real pulumi-command 1.2.1 and hcloud providers) showed them breaking,
 * checked on the doubles' own resource definitions, without an engine: Check fills no
 * addPreviousOutputInEnv, keeps a secret list element an element, answers the engine's
 * whole asset serialisation; stdout/stderr are never made secret; Diff compares every old
 * input; a preview answers unknown output; the previous output reaches the next run only
 * when not empty; the hcloud firewall's rule blocks carry the bridge's `__defaults`.
 * The scenario itself compares them call by call (deploy.test.ts's last test).
 */
import { describe, expect, it } from "vitest";
import { commandProvider } from "./providers/command.js";
import { hcloudProvider } from "./providers/hcloud.js";
import { ASSET_SIG, SECRET_SIG, SIG, UNKNOWN, secretPaths, wrapPaths, type Ctx, type Props, type ResourceDef } from "./providers/framework.js";

const command = commandProvider("1.2.1");
const local = command.resources["command:local:Command"]!;
const remote = command.resources["command:remote:Command"]!;
const copy = command.resources["command:remote:CopyToRemote"]!;
const firewall = hcloudProvider("1.41.0").resources["hcloud:index/firewall:Firewall"]!;

const secret = (value: unknown) => ({ [SIG]: SECRET_SIG, value });
const ctx = (name: string, preview = false): Ctx => ({ config: {}, preview, urn: `urn:pulumi:prod::picortex::t::${name}`, name, type: "t", log: async () => {} });
const connection = { host: "10.213.0.6", user: "pcadmin", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", hostKey: "ssh-ed25519 AAAA" };
const checked = (r: ResourceDef, news: Props) => r.check(ctx("r"), news, {}, Buffer.alloc(0)).inputs;

describe("command double (pulumi-command 1.2.1)", () => {
  it("Check fills no addPreviousOutputInEnv (local or remote), only the connection's schema defaults", () => {
    expect(checked(local, { create: "true" })).toEqual({ create: "true" });
    expect(checked(remote, { create: "true", connection })).toEqual({ create: "true", connection: { ...connection, port: 22, dialErrorLimit: 10, perDialTimeout: 15 } });
    // A program's own values win over the defaults; a proxy gets its defaults too.
    const withProxy = checked(remote, { connection: { ...connection, dialErrorLimit: 20, proxy: { host: "bastion" } } });
    expect(withProxy.connection).toMatchObject({ dialErrorLimit: 20, user: "pcadmin", proxy: { host: "bastion", user: "root", port: 22, dialErrorLimit: 10, perDialTimeout: 15 } });
    // An unknown connection (preview) stays unknown instead of being spread into an object.
    expect(checked(remote, { connection: UNKNOWN }).connection).toBe(UNKNOWN);
  });

  it("CopyToRemote's Check and Create answer the asset as the engine serialises it (text and uri empty)", async () => {
    const source = { [SIG]: ASSET_SIG, hash: "ab".repeat(32), path: "/tmp/r.tar.gz" };
    expect(checked(copy, { connection, remotePath: "/home/pcadmin/incoming/r.tar.gz", source }).source).toEqual({ ...source, text: "", uri: "" });
    // The engine sends it to Create without the empty fields; the answer has them again.
    const created = await copy.create(ctx("runtime-upload", true), { connection, remotePath: "/home/pcadmin/incoming/r.tar.gz", source });
    expect(created.outs.source).toEqual({ ...source, text: "", uri: "" });
    expect(created.id).toMatch(/^[0-9a-f]{8}$/);
  });

  it("secrets stay where the program put them: a list element, the schema's connection fields inside `connection`", () => {
    const news = { triggers: [secret("settings-digest"), "60000001"], connection: secret(connection), stdin: secret("{}") };
    expect(secretPaths(news)).toEqual([["triggers", 0], ["connection"], ["stdin"]]);
    const wrapped = wrapPaths(checked(remote, { triggers: ["settings-digest", "60000001"], connection, stdin: "{}" }), [...secretPaths(news), ...remote.schemaSecrets!]);
    expect(wrapped.triggers).toEqual([secret("settings-digest"), "60000001"]);
    expect(wrapped.stdin).toEqual(secret("{}"));
    // `connection` is secret, and its privateKey keeps its own wrapper inside (applySecrets).
    expect(wrapped.connection).toEqual(secret({ ...connection, port: 22, dialErrorLimit: 10, perDialTimeout: 15, privateKey: secret(connection.privateKey) }));
    // stdout/stderr mirror no input: nothing makes them secret.
    expect(remote.secretsByPath).toBe(true);
    expect(remote.secretOutputs ?? []).not.toContain("stdout");
    expect(copy.secretsByPath).toBe(true);
  });

  it("Diff compares the old inputs with the new ones over every property, triggers replacing, without inputDiff", () => {
    const old = { create: "a", connection: { host: "10.0.0.1" }, triggers: ["r", "1"], logging: "none" };
    const d = remote.diff(ctx("r"), "id", { ...old, stdout: "out" }, { ...old, connection: { host: "10.0.0.2" }, triggers: ["r", "2"], logging: "stdout" }, old);
    expect([...d.diffs].sort()).toEqual(["connection", "logging", "triggers"]);
    expect(d.replaces).toEqual(["triggers"]);
    expect(d.deleteBeforeReplace).toBe(false);
    // An input the double's old fixed key list did not name (local `interpreter`) is compared too.
    expect(local.diff(ctx("l"), "id", {}, { create: "x", interpreter: ["node", "-e"] }, { create: "x", interpreter: ["/bin/sh", "-c"] }).diffs).toEqual(["interpreter"]);
    for (const r of [local, remote, copy]) expect(r.diffShape?.inputDiff).toBe(false);
  });

  it("a preview answers what the real provider does: ids for commands, stdout/stderr unknown on create and on a changed update", async () => {
    const created = await remote.create(ctx("runtime-release", true), { create: "true", connection });
    expect(created.id).toMatch(/^runtime-release[0-9a-f]{8}$/);
    expect(remote.previewId).toBe(true);
    expect(created.outs).toMatchObject({ stdout: UNKNOWN, stderr: UNKNOWN });
    const olds = { create: "true", connection, stdout: "done", stderr: "" };
    expect(await remote.update(ctx("r", true), "id", olds, { create: "true", connection: { ...connection, host: "10.0.0.9" } }, olds)).toMatchObject({ stdout: UNKNOWN, stderr: UNKNOWN });
    expect(await local.update(ctx("l", true), "id", olds, { create: "true", connection }, olds)).toMatchObject({ stdout: "done", stderr: "" });
    // CopyToRemote: no id in a preview; a real id is 8 hex without the name.
    expect(copy.previewId).toBeFalsy();
  });

  it("the previous output reaches an update only when it is not empty (PULUMI_COMMAND_STDOUT unset for an empty one)", async () => {
    const create = 'printf "%s|%s" "${PULUMI_COMMAND_STDOUT-unset}" "${PULUMI_COMMAND_STDERR-unset}"';
    const olds = { create, stdout: "", stderr: "old err" };
    expect((await local.update(ctx("l"), "id", olds, { create, triggers: ["2"] }, olds)).stdout).toBe("unset|old err");
    expect((await local.update(ctx("l"), "id", olds, { create, addPreviousOutputInEnv: false }, olds)).stdout).toBe("unset|unset");
  });
});

describe("hcloud double: the bridge's __defaults", () => {
  it("each firewall rule block carries its own empty __defaults in the checked inputs; labels (a map) none", () => {
    const rule = { direction: "in", protocol: "tcp", port: "22", sourceIps: ["10.213.0.0/16"], description: "ssh bootstrap allowlist" };
    const inputs = firewall.check(ctx("workspace-firewall"), { labels: { "managed-by": "picortex" }, rules: [rule] }, {}, Buffer.from("seed")).inputs;
    expect(inputs.rules).toEqual([{ ...rule, __defaults: [] }]);
    expect(inputs.labels).toEqual({ "managed-by": "picortex" });
    expect(inputs.__defaults).toEqual(["name"]);
    // The rules still compare as a set without it: a re-check is no change.
    expect(firewall.diff(ctx("workspace-firewall"), "1", { ...inputs, rules: [rule] }, inputs, inputs).diffs).toEqual([]);
  });
});
