/**
 * The portal agent's key path as the host renders it (issue 13 item 2): the agent unit
 * loads the token as a systemd credential and hands claude an apiKeyHelper that reads it
 * plus the gateway's URL on the port the runtime listens on (one HostVars value); the
 * token has a root-only placeholder so the unit starts before the first activate; the
 * portal's Restart re-runs the unit's own pane command. No rendered file holds a token.
 */
import { describe, expect, it } from "vitest";
import { renderHost } from "../../templates/render-host.js";
import { runtimeConfigSchema } from "../../agent-runtime/config/schema.js";
import { AGENT_BRAIN_HEADERS_CREDENTIAL, AGENT_BRAIN_HEADERS_PATH, AGENT_TOKEN_CREDENTIAL, AGENT_TOKEN_PATH, AGENT_TOKEN_PREFIX, DEFAULT_HOST_GATEWAY_PORT } from "../../agent-runtime/host/agent-key.js";
import { DEFAULT_HOST_GATEWAY_PORT as MODULE_DEFAULT } from "../../agent-runtime/turns/module.js";
import { respawnArgs, type TmuxTarget } from "../../agent-runtime/portal/tmux.js";
import { offlineVars, productionVars } from "./fixtures/host-vars.js";

function fileOf(host: ReturnType<typeof renderHost>, path: string): string {
  const f = host.files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path} in the render`);
  return f.content;
}

/** The gateway port the runtime will listen on, resolved as turns/module.ts does in host mode. */
function runtimeGatewayPort(host: ReturnType<typeof renderHost>): number {
  const cfg = runtimeConfigSchema.parse(JSON.parse(fileOf(host, "/etc/picortex/runtime.json")));
  expect(cfg.mode).toBe("host");
  return cfg.turns.gatewayPort ?? MODULE_DEFAULT;
}

function agentUnit(host: ReturnType<typeof renderHost>): string {
  return fileOf(host, "/etc/systemd/system/picortex-agent.service");
}

describe("the agent unit's key path", () => {
  it("loads the token file as a credential and gives claude an apiKeyHelper that reads it, no key in the unit", () => {
    const unit = agentUnit(renderHost(productionVars));
    expect(unit).toContain(`\nLoadCredential=${AGENT_TOKEN_CREDENTIAL}:${AGENT_TOKEN_PATH}\n`);
    // systemd expands $ in Exec lines: the helper's variable reaches claude as one $.
    expect(unit).toContain(`--settings '{"apiKeyHelper":"cat $$CREDENTIALS_DIRECTORY/${AGENT_TOKEN_CREDENTIAL}","permissions":{"allow":["mcp__brain"]}}'`);
    // The brain MCP server's headers: a second credential, catted the same way.
    expect(unit).toContain(`\nLoadCredential=${AGENT_BRAIN_HEADERS_CREDENTIAL}:${AGENT_BRAIN_HEADERS_PATH}\n`);
    expect(unit).toContain(`"headersHelper":"cat $$CREDENTIALS_DIRECTORY/${AGENT_BRAIN_HEADERS_CREDENTIAL}"`);
    expect(unit).not.toMatch(/ANTHROPIC_API_KEY|ANTHROPIC_AUTH_TOKEN|SetCredential|pca_/);
  });

  for (const port of [undefined, 7500]) {
    it(`points claude at the gateway on the port the runtime listens on (${port ?? "default"})`, () => {
      const host = renderHost({ ...productionVars, ...(port ? { gatewayPort: port } : {}) });
      const listens = runtimeGatewayPort(host);
      expect(listens).toBe(port ?? DEFAULT_HOST_GATEWAY_PORT);
      const env = /^Environment=(.*)$/m.exec(agentUnit(host))![1]!.split(" ");
      expect(env).toContain(`ANTHROPIC_BASE_URL=http://127.0.0.1:${listens}/gateway`);
      // The brain's MCP endpoint is on the same listener.
      expect(agentUnit(host)).toContain(`"url":"http://127.0.0.1:${listens}/brain/mcp"`);
    });
  }

  it("the host default equals the runtime's own default", () => {
    expect(DEFAULT_HOST_GATEWAY_PORT).toBe(MODULE_DEFAULT);
    expect(() => renderHost({ ...productionVars, gatewayPort: 80 })).toThrow();
  });

  it("tmpfiles makes a root-only empty placeholder, so the unit starts before the first activate", () => {
    const tmpfiles = fileOf(renderHost(offlineVars), "/etc/tmpfiles.d/picortex.conf");
    expect(tmpfiles).toContain(`\nf ${AGENT_TOKEN_PATH} 0600 root root -\n`);
    expect(tmpfiles).toContain(`\nf ${AGENT_BRAIN_HEADERS_PATH} 0600 root root -\n`);
    expect(tmpfiles).toContain("\nd /etc/picortex/credentials 0700 root root -\n");
  });

  it("no rendered file (nor user_data) holds an agent token", () => {
    for (const vars of [productionVars, offlineVars]) {
      const host = renderHost(vars);
      expect(host.cloudConfig).not.toContain(AGENT_TOKEN_PREFIX);
      for (const f of host.files) expect(f.content, f.path).not.toMatch(/\bpca_[A-Za-z0-9_-]{20,}/);
    }
  });
});

describe("the portal's Restart of the agent's session", () => {
  const base: TmuxTarget = { session: "picortex", command: ["claude"], windowSize: "latest", socket: "/run/picortex-agent/tmux.sock" };

  it("as the agent account, re-runs the pane's own start command (the unit's, with its key path)", () => {
    const args = respawnArgs({ ...base, runAs: "picortex-agent", cwd: "/somewhere" });
    expect(args.slice(args.indexOf("respawn-pane"))).toEqual(["respawn-pane", "-k", "-t", "=picortex:"]);
  });

  it("locally, runs the configured command under the wrapper", () => {
    const args = respawnArgs(base);
    expect(args).toContain("--");
    expect(args.at(-1)).toBe("claude");
  });
});
