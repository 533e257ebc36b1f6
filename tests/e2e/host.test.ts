/**
 * End to end on a real booted Debian 12 host (issue 7). The host boots the exact
 * cloud-config the workspace stack renders (profile offline-test), the test checks it
 * over real ssh as the admin with scripts/doctor.ts, deploys the runtime release with
 * the RuntimeDeployment commands, exercises it through an ssh port forward, and tears
 * everything down.
 *
 *   npx vitest run tests/e2e                        # nspawn mode (CI default)
 *   PICORTEX_E2E_MODE=qemu npx vitest run tests/e2e # full kernel under qemu
 *
 * Needs root and the Debian packages .ci/run installs; fails (never skips) without them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderHost } from "../../templates/render-host.js";
import { agentClaudeCommand } from "../../agent-runtime/host/agent-key.js";
import { buildRelease } from "../../scripts/lib/bundle-release.js";
import { startFakeAnthropicApi, type FakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { bootHost, type BootedHost } from "./harness/boot.js";
import { deployRelease } from "./harness/deploy.js";
import { describeFailures, runDoctorRemote } from "./harness/doctor-remote.js";
import { requireHarness } from "./harness/requirements.js";
import { run } from "./harness/run.js";
import { progress } from "./harness/log.js";
import { readSse } from "./harness/sse.js";
import type { MachineMode } from "./harness/machine.js";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { chromium } from "playwright-core";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const mode = (process.env.PICORTEX_E2E_MODE ?? "nspawn") as MachineMode;
if (mode !== "nspawn" && mode !== "qemu") throw new Error(`PICORTEX_E2E_MODE must be nspawn or qemu, not ${mode}`);
const repoRoot = join(fileURLToPath(import.meta.url), "..", "..", "..");
const RUNTIME_PORT = 7420;
const CHROMIUM = "/usr/bin/chromium";
/** Per-step budget: seconds in nspawn, minutes under TCG-emulated qemu. */
const STEP_MS = mode === "qemu" ? 1_200_000 : 180_000;

describe(`workspace host end to end (${mode})`, () => {
  let host: BootedHost;
  let api: FakeAnthropicApi;
  let rendered: ReturnType<typeof renderHost>;
  let runtimeUrl = "";
  let closeForward: (() => Promise<void>) | undefined;
  const apiToken = `pct_${randomBytes(24).toString("hex")}`;
  const anthropicKey = `sk-ant-e2e-${randomBytes(16).toString("hex")}`;
  let tornDown = false;

  beforeAll(async () => {
    requireHarness(mode);
    host = await bootHost({
      mode,
      render: ({ adminSshPublicKey }) => {
        rendered = renderHost({ profile: "offline-test", image: "debian-12", hostname: "picortex-e2e", adminSshPublicKey });
        return { cloudConfig: rendered.cloudConfig, adminUser: rendered.vars.adminUser };
      },
    });
    // The fake Messages API the guest's runtime gateway forwards to: served from the
    // test machine on the address only the guest can reach (it exists once booted).
    api = await startFakeAnthropicApi({ host: host.machine.network.bindAddress, port: 0 });
  }, 1_800_000);

  afterAll(async () => {
    await closeForward?.();
    if (host && !tornDown) await host.teardown();
    await api?.close();
  }, 300_000);

  it("finishes cloud-init with no errors and passes every doctor check over ssh", async () => {
    const files = rendered.files.map((f) => ({ path: f.path, mode: f.mode, owner: f.owner.split(":")[0]! }));
    const result = await runDoctorRemote(host.session, host.workDir, ["--admin-user", host.adminUser, "--expect-files", JSON.stringify(files)]);
    expect(result.failed, describeFailures(result.failed)).toEqual([]);
    expect(result.exitCode).toBe(0);
    const names = result.checks.map((c) => c.name);
    // The escalation list really was asked of the host's sudo.
    expect(names.filter((n) => n.startsWith("sudo refuses")).length).toBeGreaterThanOrEqual(20);
    expect(names).toContain("cloud-init errors");
    expect(names).toContain("no failed units");
  }, STEP_MS);

  it("refuses an escalation for real, not only in `sudo -l`", async () => {
    const r = await host.session.exec(["sudo", "-n", "-u", "root", "/usr/bin/id"]);
    expect(r.code).not.toBe(0);
    const key = await host.session.exec(["cat", "/etc/picortex/credentials/anthropic-api-key"]);
    expect(key.code).not.toBe(0);
  }, STEP_MS);

  it("deploys the runtime release with the RuntimeDeployment commands", async () => {
    const release = await host.timings.time("bundle release", () =>
      buildRelease({ repoRoot, outDir: join(host.workDir, "release"), progress: (l) => progress("bundle", l) }),
    );
    // The operator's view of the runtime: an ssh port forward to its loopback port (the
    // tailnet address does not exist offline). The browser's origin is the forward's,
    // so it goes in the runtime's allowed origins like any reverse-proxy origin would.
    const fwd = await host.session.forward("127.0.0.1", RUNTIME_PORT);
    closeForward = fwd.close;
    runtimeUrl = `http://127.0.0.1:${fwd.port}`;
    const base = JSON.parse(rendered.files.find((f) => f.path === "/etc/picortex/runtime.json")!.content) as Record<string, unknown>;
    const runtimeConfig = {
      ...base,
      server: { ...(base.server as object), allowedOrigins: [runtimeUrl] },
      turns: { ...(base.turns as object), upstreamBaseUrl: `http://${host.machine.network.hostAddressForGuest}:${api.port}` },
    };
    await host.timings.time("deploy (upload, install, activate)", () =>
      deployRelease({
        session: host.session,
        adminUser: host.adminUser,
        hash: release.hash,
        tarball: release.tarball,
        settings: { runtimeConfig, anthropicApiKey: anthropicKey, apiToken },
      }),
    );
    const status = JSON.parse(await host.session.check(["sudo", "-n", "/usr/local/sbin/picortex-release", "status"])) as Record<string, unknown>;
    expect(JSON.stringify(status)).toContain(release.hash);
    const doctor = await runDoctorRemote(host.session, host.workDir, ["--admin-user", host.adminUser, "--runtime", "--port", String(RUNTIME_PORT)]);
    expect(doctor.failed, describeFailures(doctor.failed)).toEqual([]);
  }, STEP_MS);

  it("answers the health endpoint through an ssh port forward", async () => {
    const res = await fetch(`${runtimeUrl}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; modules: string[] };
    expect(body.ok).toBe(true);
  }, STEP_MS);

  /**
   * Root on the guest without ssh (nspawn: nsenter; qemu: qemu-guest-agent), standing in
   * for the Hetzner console or Tailscale SSH: only for what the admin deliberately cannot do.
   */
  const rootConsole = () => {
    const c = host.machine.console;
    if (!c) throw new Error(`${mode} mode has no root console`);
    return c;
  };

  it("the portal agent's own session reaches the gateway with its own credential; the runtime's state, tokens and sudo are out of its reach", async () => {
    const c = rootConsole();
    const home = "/var/lib/picortex-agent";
    const marker = `agent-e2e-${randomBytes(4).toString("hex")}`;
    // Run inside the agent unit (its tmux server spawns the window: the unit's sandbox,
    // environment and credentials), the way the portal reaches it: as the agent account.
    // A HOME of its own, so the interactive session's ~/.claude.json is not shared.
    const probe = [
      `exec >${home}/probe.out 2>&1`,
      `mkdir -p ${home}/probe && cd ${home}/probe`,
      'echo "user=$(id -un)"',
      // Positive control: reading does work here, so a refusal below is the permission's.
      'cat /etc/hostname >/dev/null && echo control=read',
      'test -s "$CREDENTIALS_DIRECTORY/agent-token" && echo credential=present',
      'test -s "$CREDENTIALS_DIRECTORY/agent-brain-headers" && echo brain-credential=present',
      'echo "base=$ANTHROPIC_BASE_URL"',
      // The agent unit's own claude argv (its --settings JSON has no single quote).
      `HOME=${home}/probe DISABLE_AUTOUPDATER=1 ${agentClaudeCommand(rendered.vars.claudePath, rendered.vars.gatewayPort).map((a) => `'${a}'`).join(" ")} -p --output-format json "${marker}" </dev/null; echo "claude=$?"`,
      "for f in /var/lib/picortex/api-token /var/lib/picortex/agent-token.sha256 /var/lib/picortex/portal-token /var/lib/picortex/picortex.sqlite /etc/picortex/credentials/agent-token /etc/picortex/credentials/agent-brain-headers /etc/picortex/credentials/anthropic-api-key; do cat \"$f\" >/dev/null 2>&1 && echo \"READ $f\"; done",
      'ls /var/lib/picortex >/dev/null 2>&1 && echo "LISTED /var/lib/picortex"',
      'sudo -n true >/dev/null 2>&1 && echo "SUDO ok"',
      'sudo -n -u picortex true >/dev/null 2>&1 && echo "SUDO picortex ok"',
      "echo probe-done",
    ].join("\n");
    // The agent's Claude Code records into the host's brain through its MCP tools (issue 16 item 8).
    const agentNote = `${marker} agent note`;
    api.enqueue({ forText: marker, toolUse: { name: "mcp__brain__brain_record", input: { title: agentNote, conclusion: "recorded by the portal agent", kind: "insight" } } });
    await c(["sh", "-c", `echo ${Buffer.from(probe).toString("base64")} | base64 -d > ${home}/probe.sh && chown picortex-agent: ${home}/probe.sh && rm -f ${home}/probe.out`]);
    // The unit restarted at activate (a new token): retry while its tmux server comes up.
    for (let i = 0; ; i++) {
      try {
        await c(["runuser", "-u", "picortex-agent", "--", "/usr/bin/tmux", "-S", "/run/picortex-agent/tmux.sock", "new-window", "-d", "-t", "=picortex:", "sh", `${home}/probe.sh`]);
        break;
      } catch (err) {
        if (i >= 60) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    let out = "";
    for (let i = 0; i < 600 && !out.includes("probe-done"); i++) {
      await new Promise((r) => setTimeout(r, 500));
      out = await c(["sh", "-c", `cat ${home}/probe.out 2>/dev/null || true`]);
    }
    expect(out, out).toContain("probe-done");
    expect(out).toContain("user=picortex-agent");
    expect(out).toContain("control=read");
    expect(out).toContain("credential=present");
    expect(out).toMatch(/base=http:\/\/127\.0\.0\.1:\d+\/gateway/);
    expect(out, out).toContain("claude=0");
    // The turn reached the fake API through the gateway, with the real key swapped in.
    const request = api.messageRequests().find((r) => r.lastUserText?.includes(marker));
    expect(request, out).toBeDefined();
    expect(request!.headers["x-api-key"]).toBe(anthropicKey);
    expect(out).toContain("brain-credential=present");
    const recorded = api.messageRequests().find((r) => r.toolResults?.some((t) => t.text.includes(agentNote)))?.toolResults?.find((t) => t.text.includes(agentNote));
    const mine = api.messageRequests().filter((r) => r.userTexts?.some((t) => t.includes(marker)));
    expect(recorded, `${out}\n${JSON.stringify(mine.map((r) => ({ texts: r.userTexts, tools: r.toolNames, results: r.toolResults })))}`).toBeDefined();
    expect(recorded!.isError, recorded!.text).toBe(false);
    expect(recorded!.text).toContain('"agent":"portal-agent"');
    // Nothing of the runtime's is readable from the agent's session, and sudo does nothing.
    expect(out).not.toMatch(/^(READ|LISTED|SUDO) /m);
    // The token (root reads it) is in no process's argv or environment, no runtime-readable file, no log.
    const token = (await c(["cat", "/etc/picortex/credentials/agent-token"])).trim();
    expect(token).toMatch(/^pca_/);
    expect(await c(["sh", "-c", "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"])).not.toContain(token);
    expect(await c(["journalctl", "--no-pager", "-o", "cat"])).not.toContain(token);
    // As the runtime user, and as an account with no group of ours (what a chat user is to these files).
    for (const user of ["picortex", "nobody"]) {
      const readable = await c(["runuser", "-u", user, "--", "sh", "-c", "find /var/lib /etc/picortex /run /srv -xdev -type f -readable -size -2M -exec cat {} + 2>/dev/null || true"]);
      expect(readable.length, user).toBeGreaterThan(0);
      expect(readable, user).not.toContain(token);
    }
  }, STEP_MS);

  /**
   * Port squatting (issue 13): a chat user or the portal's agent used to be able to bind
   * [::1]:7420 (MagicDNS answers AAAA) or any address while the runtime restarted. On the
   * booted host picortex-runtime.socket holds both ports in PID 1: as an unprivileged
   * account, every bind of either port fails while the runtime runs and while it is
   * stopped, and the restarted runtime passes the release's health gate (listeners owned
   * by its MainPID).
   */
  it("no other account can bind the runtime's or the gateway's port, on any address, while the runtime runs or is stopped", async () => {
    const c = rootConsole();
    const gatewayPort = rendered.vars.gatewayPort;
    const free = 7499;
    // The tailnet's addresses, IPv4 and IPv6 (the one MagicDNS's AAAA answer names), as
    // tailscaled puts them on a real host (offline there is no tailscale0: lo holds them).
    const tailnet4 = "100.101.102.103";
    const tailnet6 = "fd7a:115c:a1e0::6a2b:3c4d";
    await c(["ip", "addr", "replace", `${tailnet4}/32`, "dev", "lo"]);
    await c(["ip", "-6", "addr", "replace", `${tailnet6}/128`, "dev", "lo", "nodad"]);
    const probe = `const net = require("node:net");
const tries = [["::1", false], ["127.0.0.1", false], ["127.0.0.2", false], ["0.0.0.0", false], ["::", false], ["::", true], ["${tailnet4}", false], ["${tailnet6}", false]];
(async () => {
  const out = {};
  for (const port of [${RUNTIME_PORT}, ${gatewayPort}, ${free}]) for (const [h, v6] of tries)
    out[h + (v6 ? " v6only" : "") + " " + port] = await new Promise((ok) => {
      const s = net.createServer();
      s.once("error", (e) => ok(e.code));
      s.listen({ port, host: h, ipv6Only: v6, exclusive: true }, () => s.close(() => ok("bound")));
    });
  console.log(JSON.stringify(out));
})();`;
    const attack = async () => JSON.parse(await c(["runuser", "-u", "nobody", "--", "/usr/bin/node", "-e", probe])) as Record<string, string>;
    const expectHeld = (got: Record<string, string>) => {
      for (const [what, result] of Object.entries(got)) {
        // The control: a port nobody holds binds, so the refusals are the ports'.
        if (what.endsWith(` ${free}`)) expect(result, what).toBe("bound");
        else expect(result, what).toBe("EADDRINUSE");
      }
      expect(Object.keys(got).length).toBe(24);
    };
    expect((await c(["systemctl", "is-active", "picortex-runtime.socket"])).trim()).toBe("active");
    expectHeld(await attack());
    // The restart window, held open: the runtime is down, its socket is not.
    await c(["systemctl", "stop", "picortex-runtime.service"]);
    try {
      expect((await c(["systemctl", "is-active", "picortex-runtime.socket"])).trim()).toBe("active");
      expectHeld(await attack());
    } finally {
      await c(["systemctl", "start", "picortex-runtime.service"]);
    }
    let healthy = false;
    for (let i = 0; i < 120 && !healthy; i++) {
      try {
        healthy = ((await (await fetch(`${runtimeUrl}/healthz`, { signal: AbortSignal.timeout(5_000) })).json()) as { ok?: boolean }).ok === true;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    expect(healthy).toBe(true);
    // The release's gate accepts the real runtime (every listener on 7420 and 7419 is its MainPID's).
    const status = JSON.parse(await host.session.check(["sudo", "-n", "/usr/local/sbin/picortex-release", "status"])) as { healthy: boolean };
    expect(status.healthy).toBe(true);
  }, STEP_MS);

  const CHAT = "e2e-first";
  const auth = () => ({ authorization: `Bearer ${apiToken}` });

  it("creates a chat and streams its provisioning events; the chat is a real Linux user", async () => {
    const { status, events } = await host.timings.time("create chat (provisioning)", () =>
      readSse(`${runtimeUrl}/v1/chats`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ id: CHAT }),
      }),
    );
    expect(status, JSON.stringify(events)).toBe(200);
    const steps = events.filter((e) => e.event === "progress").map((e) => (e.data as { step: string }).step);
    expect(steps.length, JSON.stringify(events)).toBeGreaterThan(0);
    expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("ready");
    const passwd = await host.session.check(["getent", "passwd", `pc-${CHAT}`]);
    expect(passwd).toContain(`:/srv/picortex/chats/${CHAT}:`);
    const home = await host.session.check(["stat", "-c", "%U %a", `/srv/picortex/chats/${CHAT}`]);
    expect(home.trim()).toBe(`pc-${CHAT} 700`);
    // The admin (and anyone but the chat user) cannot look inside.
    expect((await host.session.exec(["ls", `/srv/picortex/chats/${CHAT}`])).code).not.toBe(0);
  }, STEP_MS);

  it("answers a turn with the real Claude CLI, as the chat user, against the fake API on the test machine", async () => {
    const text = `hello from the e2e test ${randomBytes(4).toString("hex")}`;
    const t0 = Date.now();
    const post = await fetch(`${runtimeUrl}/v1/chats/${CHAT}/turns`, {
      method: "POST",
      headers: { ...auth(), "content-type": "application/json" },
      body: JSON.stringify({ text }),
    });
    expect(post.status).toBe(202);
    const turn = (await post.json()) as { id: string; eventsPath: string };
    const { events } = await readSse(`${runtimeUrl}${turn.eventsPath}`, { headers: auth(), timeoutMs: 600_000 });
    host.timings.record("first turn (post to reply)", (Date.now() - t0) / 1000);
    const final = events.at(-1);
    expect(final?.event, JSON.stringify(events)).toBe("turn");
    const view = final!.data as { status: string; reply: string | null; error: unknown };
    expect(view.status, JSON.stringify(view)).toBe("done");
    // The fake API's default reply echoes the prompt: this reply came from that request.
    const request = api.messageRequests().find((r) => r.lastUserText?.includes(text));
    expect(request, `fake API saw: ${JSON.stringify(api.requests.map((r) => r.path))}`).toBeDefined();
    expect(view.reply).toContain(text);
    // The runtime's gateway swapped the chat's own token for the real key on the way out.
    expect(request!.headers["x-api-key"]).toBe(anthropicKey);
    // Claude ran in the chat's workspace under its home (its system prompt names the cwd).
    expect(JSON.stringify(request!.body)).toContain(`/srv/picortex/chats/${CHAT}`);
  }, STEP_MS);

  it("deletes the chat: Linux user gone, workspace archived", async () => {
    const res = await fetch(`${runtimeUrl}/v1/chats/${CHAT}`, { method: "DELETE", headers: auth() });
    const body = (await res.json()) as { deleted: boolean; archivePath: string | null };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.deleted).toBe(true);
    expect(body.archivePath).toMatch(/^\/var\/lib\/picortex\/archives\/.+\.tar\.gz$/);
    expect((await host.session.exec(["getent", "passwd", `pc-${CHAT}`])).code).toBe(2);
    expect((await host.session.exec(["test", "-e", `/srv/picortex/chats/${CHAT}`])).code).toBe(1);
    // The archive is root/runtime-only on the host: list it through the root console.
    const listing = await rootConsole()(["tar", "-tzf", body.archivePath!]);
    expect(listing).toMatch(/workspace\//);
  }, STEP_MS);

  it("shows the host's tmux session in the portal page in headless Chromium, through the port forward", async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM}: apt-get install chromium`);
    // The portal token is 0600 for the runtime user: an operator reads it as root.
    const portalToken = (await rootConsole()(["cat", "/var/lib/picortex/portal-token"])).trim();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      const urls: string[] = [];
      page.on("request", (r) => urls.push(r.url()));
      const problems: string[] = [];
      page.on("console", (m) => problems.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => problems.push(String(e)));
      await page.goto(`${runtimeUrl}/portal/#token=${portalToken}`);
      await page.waitForSelector('body[data-state="connected"]', { timeout: 60_000 }).catch(async (err: Error) => {
        const state = await page.evaluate(() => document.body.dataset.state);
        const journal = host.machine.console
          ? await host.machine.console(["journalctl", "-u", "picortex-runtime.service", "--no-pager", "-n", "40"]).catch((e: Error) => e.message)
          : "";
        // The portal attaches to the agent's own unit: its state and log say why a session is missing.
        const agent = host.machine.console
          ? await host.machine
              .console(["sh", "-c", "systemctl status picortex-agent.service --no-pager -l; journalctl -u picortex-agent.service --no-pager -n 40"])
              .catch((e: Error) => e.message)
          : "";
        throw new Error(`${err.message}\npage state: ${state}\npage console: ${problems.join("\n")}\nruntime journal:\n${journal}\nagent unit:\n${agent}`);
      });
      // Whatever the session's command printed is on screen: the page is attached to tmux.
      await page.waitForFunction(
        () => ((window as unknown as { picortexPortal?: { text(): string } }).picortexPortal?.text() ?? "").trim().length > 0,
        undefined,
        { timeout: 60_000, polling: 200 },
      );
      const status = await page.evaluate(async () => (await fetch("/portal/api/status")).json());
      expect(status).toMatchObject({ sessionExists: true });
      expect((status as { tmuxClients: number }).tmuxClients).toBeGreaterThanOrEqual(1);
      expect(urls.some((u) => u.includes(portalToken)), "the token must never be in a request URL").toBe(false);
    } finally {
      await browser.close();
    }
  }, STEP_MS);

  it("records a brain entry on the test machine, pushes it, and pulls it from the host's sync server into a fresh replica", async () => {
    const consoleExec = rootConsole();
    const cli = (home: string, extra: Record<string, string> = {}) => (args: string[]) =>
      run([join(repoRoot, "node_modules/.bin/tsx"), join(repoRoot, "agent-runtime/cli/picortex.ts"), "brain", ...args], {
        cwd: home,
        env: { PATH: process.env.PATH, HOME: home, PICORTEX_BRAIN_DB: join(home, "brain.sqlite"), ...extra },
      });
    const homeA = mkdtempSync(join(host.workDir, "brain-a-"));
    const homeB = mkdtempSync(join(host.workDir, "brain-b-"));
    const conclusion = `booted hosts prove the workspace ${randomBytes(4).toString("hex")}`;
    const recorded = JSON.parse(await cli(homeA)(["record", "--title", "e2e brain entry", "--conclusion", conclusion, "--json"])) as {
      entry: { id: string; workspaceId: string };
    };
    // Issuing a sync token writes the runtime's database: root (or the runtime user) on the host.
    const issued = JSON.parse(
      await consoleExec([
        "runuser", "-u", "picortex", "--",
        "/usr/bin/node", "/opt/picortex/current/picortex.mjs", "brain", "token", "create",
        "--config", "/etc/picortex/runtime.json", "--workspace", recorded.entry.workspaceId, "--label", "e2e", "--json",
      ]),
    ) as { token: string };
    const sync = { PICORTEX_BRAIN_URL: runtimeUrl, PICORTEX_BRAIN_TOKEN: issued.token };
    const pushed = JSON.parse(await cli(homeA, sync)(["sync", "--push", "--json"])) as { ok: boolean };
    expect(pushed.ok, JSON.stringify(pushed)).toBe(true);
    const pulled = JSON.parse(await cli(homeB, sync)(["sync", "--pull", "--json"])) as { ok: boolean };
    expect(pulled.ok, JSON.stringify(pulled)).toBe(true);
    const shown = JSON.parse(await cli(homeB)(["show", recorded.entry.id, "--json"])) as { entry: { id: string; conclusion: string } };
    expect(shown.entry.id).toBe(recorded.entry.id);
    expect(shown.entry.conclusion).toBe(conclusion);
  }, STEP_MS);

  it("tears down: runtime stopped, machine powered off, nothing left behind", async () => {
    await host.timings.time("stop runtime (picortex-release uninstall)", () =>
      host.session.check(["sudo", "-n", "/usr/local/sbin/picortex-release", "uninstall"]),
    );
    const active = await host.session.exec(["systemctl", "is-active", "picortex-runtime.service"]);
    expect(active.stdout.trim()).not.toBe("active");
    // Nothing of the runtime survives it: no runtime-user process (tmux, warm claude) and no chat-user process.
    const leftover = await host.session.exec(["ps", "-eo", "user:32=,pid=,args="]);
    const runtimeProcs = leftover.stdout.split("\n").filter((l) => /^(picortex|pc-\S+)\s/.test(l.trim()));
    expect(runtimeProcs, runtimeProcs.join("\n")).toEqual([]);
    await closeForward?.();
    closeForward = undefined;
    tornDown = true;
    const left = await host.teardown();
    expect(left).toEqual([]);
    process.stderr.write(host.timings.report(`e2e timings (${mode})`) + "\n");
  }, STEP_MS);
});
