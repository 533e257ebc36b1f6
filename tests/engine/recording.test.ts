/**
 * The recording comparison itself (harness/recording.ts), on hand-written
 * PULUMI_DEBUG_GRPC lines in the engine's format: it must report a double that answers
 * differently from the recorded real provider (a lost deleteBeforeReplace, a missing
 * output, a call the real provider did not get), and a recording must hold no
 * run-specific value and no secret.
 */
import { describe, expect, it } from "vitest";
import { compareCalls, formatRecording, keptLog, parseRecording, providerCalls, SECRET_SIG, SIG } from "./harness/recording.js";
import { KNOWN_DIFFERENCES } from "./recordings/known-differences.js";

const URN = "urn:pulumi:prod::picortex::picortex:host:Host$hcloud:index/server:Server::picortex";
const line = (method: string, request: object, response?: object, errors?: string[]) =>
  JSON.stringify({ method: `/pulumirpc.ResourceProvider/${method}`, request, response, errors, metadata: { mode: "client" } });

function realLog(): string {
  return [
    line("Diff", { urn: URN, id: "4711" }, { changes: "DIFF_SOME", replaces: ["image"], diffs: ["image"], deleteBeforeReplace: true, detailedDiff: { image: { kind: "UPDATE_REPLACE", inputDiff: true } } }),
    line("Create", { urn: URN, preview: false }, { id: "4711", properties: { id: "4711", name: "picortex", ipv4Address: "10.3.0.2", userData: "3f786850e387550fdab836ed7e6dc881de23001b", created: "2026-12-06T20:01:02Z", backups: false, token: { [SIG]: SECRET_SIG, value: "tok-SECRET-123456" } } }),
    line("Create", { urn: URN, preview: true }, { properties: { name: "picortex" } }),
    line("Read", { urn: URN, id: "4711" }, undefined, ["server 4711 not found at http://127.0.0.1:41234/v1"]),
    JSON.stringify({ method: "/pulumirpc.ResourceMonitor/RegisterResource", request: { urn: URN } }),
    JSON.stringify({ method: "/pulumirpc.ResourceProvider/Delete", request: { urn: URN, id: "4711" }, progress: "request_started" }),
    '{"method":"/pulumirpc.ResourceProvider/Create", "request": {"ur', // cut by a killed process
  ].join("\n");
}

describe("recorded provider calls", () => {
  it("keeps only provider calls, keyed by method, URN, preview and ordinal, normalised", () => {
    const calls = providerCalls(realLog(), { values: { "tok-SECRET-123456": "<hcloud-token>" } });
    expect(calls.map((c) => c.key)).toEqual([`Create ${URN} #1`, `Create ${URN} (preview) #1`, `Diff ${URN} #1`, `Read ${URN} #1`]);
    const create = calls.find((c) => c.key === `Create ${URN} #1`)!.response as { id: string; properties: Record<string, unknown> };
    expect(create.id).toBe("<id>");
    expect(create.properties).toEqual({ backups: false, created: "<time>", id: "<id>", ipv4Address: "<address>", name: "picortex", token: { [SIG]: SECRET_SIG, value: "<secret>" }, userData: "<sha1>" });
    expect(calls.find((c) => c.method === "Read")!.errors).toEqual(["server 4711 not found at http://127.0.0.1:<port>/v1"]);
    const text = formatRecording(calls);
    expect(text).not.toContain("tok-SECRET-123456");
    expect(parseRecording(text)).toEqual(calls);
  });

  it("a long text echoed from the request is compared as echoed, not by its content", () => {
    const script = "#cloud-config\n" + "x".repeat(80);
    const log = (text: string) => line("Check", { urn: URN, news: { userData: text } }, { inputs: { userData: text } });
    const real = providerCalls(log(script));
    expect(real[0]!.response).toEqual({ inputs: { userData: "<echoed from the request>" } });
    // Another template, echoed as well: no difference.
    expect(compareCalls(real, providerCalls(log(script.replace("x", "y")))).differences).toEqual([]);
    // A double answering something else than the request's text differs.
    const other = line("Check", { urn: URN, news: { userData: script } }, { inputs: { userData: script + "\n" } });
    expect(compareCalls(real, providerCalls(other)).differences.map((d) => d.path)).toEqual(["response.inputs.userData"]);
  });

  it("a double matching the real provider has no difference", () => {
    const real = providerCalls(realLog());
    expect(compareCalls(real, providerCalls(realLog())).differences).toEqual([]);
  });

  it("reports a double that loses deleteBeforeReplace, an output, or makes an extra call", () => {
    const real = providerCalls(realLog());
    const broken = realLog()
      .replace('"deleteBeforeReplace":true', '"deleteBeforeReplace":false')
      .replace('"backups":false,', "")
      .concat("\n", line("Delete", { urn: URN, id: "4711" }, {}));
    const { differences } = compareCalls(real, providerCalls(broken));
    expect(differences.map((d) => `${d.key} ${d.path}`)).toEqual([
      `Create ${URN} #1 response.properties.backups`,
      `Delete ${URN} #1 `,
      `Diff ${URN} #1 response.deleteBeforeReplace`,
    ]);
  });

  it("a known difference is tolerated only where it is declared, with its reason", () => {
    const real = providerCalls(realLog());
    const broken = providerCalls(realLog().replace('"backups":false,', ""));
    const { differences, tolerated } = compareCalls(real, broken, { known: [{ key: /hcloud:index\/server:Server/, path: /\.backups$/, why: "test" }] });
    expect(differences).toEqual([]);
    expect(tolerated.map((t) => t.why)).toEqual(["test"]);
  });

  it("a known difference with `equivalent` is tolerated only when the values are the same where the provider decides", () => {
    const diffLog = (diffs: string[]) => line("Diff", { urn: URN, id: "1" }, { changes: "DIFF_SOME", diffs });
    const known = [{ key: /Diff/, path: /^response\.diffs$/, why: "order", equivalent: (a: unknown, b: unknown) => JSON.stringify([...(a as string[])].sort()) === JSON.stringify([...(b as string[])].sort()) }];
    const real = providerCalls(diffLog(["triggers", "connection"]));
    const reordered = compareCalls(real, providerCalls(diffLog(["connection", "triggers"])), { known });
    expect(reordered.differences).toEqual([]);
    expect(reordered.tolerated.map((t) => `${t.path} ${t.why}`)).toEqual(["response.diffs order"]);
    // Another element is not a reordering: reported at the element, not tolerated.
    const other = compareCalls(real, providerCalls(diffLog(["connection", "create"])), { known });
    expect(other.differences.map((d) => d.path)).toEqual(["response.diffs[0]", "response.diffs[1]"]);
    expect(other.tolerated).toEqual([]);
  });

  it("a real provider is compared with the inherent tolerances only", () => {
    const real = providerCalls(realLog());
    const broken = providerCalls(realLog().replace('"backups":false,', ""));
    const onlyDoubles = [{ key: /hcloud:index\/server:Server/, path: /\.backups$/, why: "doubles only" }];
    expect(compareCalls(real, broken, { known: onlyDoubles, realProviders: ["hcloud"] }).differences.map((d) => d.path)).toEqual(["response.properties.backups"]);
    expect(compareCalls(real, broken, { known: onlyDoubles, realProviders: ["tailscale"] }).differences).toEqual([]);
    expect(compareCalls(real, broken, { known: [{ ...onlyDoubles[0]!, inherent: true }], realProviders: ["hcloud"] }).differences).toEqual([]);
  });

  describe("the deploy's timing-dependent outputs (recordings/known-differences.ts)", () => {
    const CLOUD_INIT = "urn:pulumi:prod::picortex::picortex:deploy:RuntimeDeployment$command:remote:Command::runtime-cloud-init";
    const REACHABLE = "urn:pulumi:prod::picortex::picortex:deploy:RuntimeDeployment$command:local:Command::runtime-reachable";
    const DIFF = "urn:pulumi:prod::picortex::picortex:deploy:RuntimeDeployment$command:remote:Command::runtime-settings";
    const create = (urn: string, properties: object) => providerCalls(line("Create", { urn }, { id: "x", properties }));
    const status = (dots: string, time: string, state = "done") => `${dots}\nstatus: ${state}\nboot_status_code: enabled-by-generator\nlast_update: ${time}\ndetail:\nDataSourceNoCloud [seed=/var/lib/cloud/seed/nocloud][dsmode=net]`;
    const cmp = (real: ReturnType<typeof create>, double: ReturnType<typeof create>, realProviders: string[] = []) => compareCalls(real, double, { known: KNOWN_DIFFERENCES, realProviders });

    it("cloud-init's wait: the dots and the boot's clock are tolerated, for the real provider too; another status is not", () => {
      const real = create(CLOUD_INIT, { stdout: status("........", "Sun, 06 Dec 2026 21:42:36 +0000") });
      const same = create(CLOUD_INIT, { stdout: status("", "Sun, 06 Dec 2026 23:06:04 +0000") });
      expect(cmp(real, same).differences).toEqual([]);
      expect(cmp(real, same, ["command"]).differences).toEqual([]);
      expect(cmp(real, create(CLOUD_INIT, { stdout: status("..", "Sun, 06 Dec 2026 23:06:04 +0000", "error") })).differences.map((d) => d.path)).toEqual(["response.properties.stdout"]);
      // A double making stdout secret is not a timing difference.
      expect(cmp(real, create(CLOUD_INIT, { stdout: { [SIG]: SECRET_SIG, value: status("", "x") } })).differences).toHaveLength(1);
    });

    it("the readiness poll: the attempts made before sshd answered are tolerated; a host that never answered is not", () => {
      const real = create(REACHABLE, { stderr: "ssh on 10.0.0.6:22 is up (attempt 1)" });
      expect(cmp(real, create(REACHABLE, { stderr: "waiting for ssh on 10.0.0.6:22 (attempt 1/60)\nwaiting for ssh on 10.0.0.6:22 (attempt 2/60)\nssh on 10.0.0.6:22 is up (attempt 3)" })).differences).toEqual([]);
      expect(cmp(real, create(REACHABLE, { stderr: "ssh on 10.0.0.6:2222 is up (attempt 1)" })).differences).toHaveLength(1);
      expect(cmp(real, create(REACHABLE, { stderr: "waiting for ssh on 10.0.0.6:22 (attempt 1/60)\nssh on 10.0.0.6:22 did not answer after 60 attempts" })).differences).toHaveLength(1);
    });

    it("pulumi-command's diffs/replaces in another order are the same answer; a lost replace is not", () => {
      const diff = (diffs: string[], replaces: string[]) => providerCalls(line("Diff", { urn: DIFF, id: "x" }, { changes: "DIFF_SOME", diffs, replaces }));
      expect(cmp(diff(["triggers", "connection"], ["triggers"]), diff(["connection", "triggers"], ["triggers"]), ["command"]).differences).toEqual([]);
      expect(cmp(diff(["triggers", "connection"], ["triggers"]), diff(["connection", "triggers"], [])).differences.length).toBeGreaterThan(0);
    });
  });

  it("a left-out step (kill -9 mid-up) is dropped from the log, and the ordinals after it are counted without it", () => {
    const first = line("Create", { urn: URN, preview: false }, { id: "1", properties: { name: "a" } }) + "\n";
    const killed = line("Create", { urn: URN, preview: false }, { id: "2", properties: { name: "killed" } }) + "\n" + '{"method":"/pulumirpc.ResourceProvider/Create", "request": {"ur';
    const after = "\n" + line("Delete", { urn: URN, id: "1" }, {}) + "\n" + line("Create", { urn: URN, preview: false }, { id: "3", properties: { name: "b" } }) + "\n";
    const buf = Buffer.from(first + killed + after, "utf8");
    const from = Buffer.byteLength(first);
    const to = from + Buffer.byteLength(killed);
    const kept = providerCalls(keptLog(buf, [[from, to]]));
    expect(kept.map((c) => `${c.key} ${JSON.stringify((c.response as { properties?: unknown })?.properties ?? null)}`)).toEqual([
      `Create ${URN} #1 {"name":"a"}`,
      `Create ${URN} #2 {"name":"b"}`,
      `Delete ${URN} #1 null`,
    ]);
    // Without the range, the killed step's Create is counted and shifts every later ordinal.
    expect(providerCalls(buf.toString("utf8")).filter((c) => c.method === "Create")).toHaveLength(3);
    expect(() => keptLog(buf, [[to, from]])).toThrow(/bad excluded range/);
  });
});
