import { describe, it, expect, beforeAll } from "vitest";
import { parse as parseYaml } from "yaml";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { recordResources, settle, byName, isSecretValue, plain, type RecordedResource } from "./helpers/recording-mocks.js";
import { workspaceStackName, StackNameError } from "../../stacks/chat/stack-reference.js";
import { projectConfig, parseChatStackConfig, ChatStackConfigError } from "../../stacks/chat/config.js";
import { chatApiScript, assertRuntimeUrl } from "../../components/chat-workspace.js";

const repoRoot = resolve(import.meta.dirname, "../..");

describe("workspace StackReference name", () => {
  it("Pulumi Cloud: <org>/<project>/<stack>", () => {
    expect(workspaceStackName({ org: "acme", stack: "prod" })).toBe("acme/picortex/prod");
    expect(workspaceStackName({ org: "acme", project: "infra", stack: "prod" })).toBe("acme/infra/prod");
  });
  it("self-managed backends: the literal 'organization'", () => {
    expect(workspaceStackName({ org: "organization", stack: "prod" })).toBe("organization/picortex/prod");
  });
  it("passes a fully qualified name through, and rejects malformed ones", () => {
    expect(workspaceStackName({ org: "ignored", stack: "organization/picortex/dev" })).toBe("organization/picortex/dev");
    expect(() => workspaceStackName({ org: "acme", stack: "picortex/prod" })).toThrow(StackNameError);
    expect(() => workspaceStackName({ org: "acme", stack: "a/b/c/d" })).toThrow(/fully qualified/);
    expect(() => workspaceStackName({ org: "ac me", stack: "prod" })).toThrow(/workspaceOrg/);
  });
});

describe("chat stack config", () => {
  it("derives the chat id from a chat-<id> stack name and applies defaults", () => {
    expect(parseChatStackConfig({ workspaceStack: "prod" }, "chat-team-alpha")).toEqual({
      workspaceStack: "prod",
      workspaceProject: "picortex",
      onDelete: "archive",
      chatId: "team-alpha",
    });
  });
  it("refuses a misspelled key of the project instead of ignoring it (issue 21 item 19)", () => {
    const raw = projectConfig({ "picortex-chat:workspaceStack": "prod", "picortex-chat:budgetToken": "5", "command:x": "y" }, "picortex-chat");
    expect(raw).toEqual({ workspaceStack: "prod", budgetToken: "5" });
    expect(() => parseChatStackConfig(raw, "chat-x1")).toThrow(/budgetToken/);
  });

  it("coerces budgetTokens from the string Pulumi config gives", () => {
    expect(parseChatStackConfig({ workspaceStack: "prod", budgetTokens: "5000" }, "chat-x1").budgetTokens).toBe(5000);
  });
  it("gives actionable errors", () => {
    expect(() => parseChatStackConfig({}, "chat-ok")).toThrow(/pulumi config set workspaceStack prod/);
    expect(() => parseChatStackConfig({ workspaceStack: "prod" }, "dev")).toThrow(/pulumi stack init chat-team-alpha/);
    expect(() => parseChatStackConfig({ workspaceStack: "prod", chatId: "Bad_Id" }, "chat-x")).toThrow(ChatStackConfigError);
    expect(() => parseChatStackConfig({ workspaceStack: "prod", onDelete: "keep" }, "chat-x")).toThrow(/onDelete/);
    expect(() => parseChatStackConfig({ workspaceStack: "prod", typo: 1 }, "chat-x")).toThrow(/typo|Unrecognized/);
  });
});

describe("chat API program", () => {
  it("is fixed text per action: nothing variable is interpolated", () => {
    const create = chatApiScript("create");
    expect(create).toContain('const action = "create"');
    expect(create).toContain("process.env.PICORTEX_API_TOKEN");
    expect(chatApiScript("delete")).toContain('const action = "delete"');
    expect(() => chatApiScript("drop" as "create")).toThrow();
  });
  it("refuses runtime URLs that would carry credentials", () => {
    expect(assertRuntimeUrl("http://picortex:7420/")).toBe("http://picortex:7420");
    expect(() => assertRuntimeUrl("http://u:p@picortex:7420")).toThrow(/credentials/);
    expect(() => assertRuntimeUrl("http://picortex:7420/?token=x")).toThrow(/query/);
    expect(() => assertRuntimeUrl("ftp://x")).toThrow(/http/);
  });
  it("Pulumi.yaml declares the nodejs runtime and only required/defaulted config keys", () => {
    const y = parseYaml(readFileSync(join(repoRoot, "stacks/chat/Pulumi.yaml"), "utf8"));
    expect(y.name).toBe("picortex-chat");
    expect(y.runtime.name).toBe("nodejs");
    expect(y.main).toBe("index.ts");
    for (const [key, decl] of Object.entries(y.config as Record<string, { default?: unknown }>)) {
      if (key !== "workspaceStack") expect(decl.default, key).toBeDefined();
    }
  });
});

describe("chat stack program (recording mocks)", () => {
  let resources: RecordedResource[];
  let program: Record<string, pulumi.Output<unknown> | string>;
  beforeAll(async () => {
    resources = await recordResources(
      ({ type }) =>
        type === "pulumi:pulumi:StackReference"
          ? { outputs: { runtimeUrl: "http://picortex:7420", runtimeApiToken: "pct_workspace_token_value" }, secretOutputNames: ["runtimeApiToken"] }
          : {},
      "picortex-chat",
      "chat-team-alpha",
    );
    pulumi.runtime.setAllConfig({ "picortex-chat:workspaceStack": "prod", "picortex-chat:budgetTokens": "9000" });
    program = (await import("../../stacks/chat/index.js")) as unknown as Record<string, pulumi.Output<unknown> | string>;
    await settle();
  });

  it("references the workspace stack by its qualified name", () => {
    const ref = resources.find((r) => r.type === "pulumi:pulumi:StackReference")!;
    // Under mocks getOrganization() is "organization", as on a self-managed backend.
    expect(plain(ref.inputs.name)).toBe("organization/picortex/prod");
    expect(program.workspaceStack).toBe("organization/picortex/prod");
  });

  it("creates a ChatWorkspace with one local command parented to it", () => {
    const comp = byName(resources, "team-alpha");
    expect(comp.type).toBe("picortex:chat:ChatWorkspace");
    const cmd = byName(resources, "team-alpha-chat");
    expect(cmd.type).toBe("command:local:Command");
    expect(cmd.parent).toBe(comp.urn);
    expect(cmd.inputs.create).toBe(chatApiScript("create"));
    expect(cmd.inputs.delete).toBe(chatApiScript("delete"));
    expect(cmd.inputs.interpreter).toEqual(["node", "-e"]);
    // Issue 21 item 16: a new runtime URL must not replace (create-before-delete would let
    // the old resource's delete archive the chat the new one had just adopted).
    expect(plain(cmd.inputs.triggers)).toEqual(["team-alpha"]);
  });

  it("feeds the workspace outputs in through the environment, with the token secret", () => {
    const env = byName(resources, "team-alpha-chat").inputs.environment as Record<string, unknown>;
    expect(isSecretValue(env) || isSecretValue(env.PICORTEX_API_TOKEN)).toBe(true);
    expect(plain(env)).toEqual({
      PICORTEX_CHAT_ID: "team-alpha",
      PICORTEX_RUNTIME_URL: "http://picortex:7420",
      PICORTEX_API_TOKEN: "pct_workspace_token_value",
      PICORTEX_CHAT_ON_DELETE: "archive",
      PICORTEX_CHAT_BUDGET: "9000",
    });
    // Token never in command text or triggers.
    const cmd = byName(resources, "team-alpha-chat").inputs;
    expect(JSON.stringify(plain([cmd.create, cmd.delete, cmd.triggers]))).not.toContain("pct_workspace_token_value");
    expect(cmd.logging).toBe("stderr");
  });

  it("exports the chat id and Linux user", async () => {
    const value = <T>(o: unknown) => new Promise<T>((r) => (o as pulumi.Output<T>).apply((v) => r(v)));
    expect(await value(program.chatId)).toBe("team-alpha");
    expect(await value(program.linuxUser)).toBe("pc-team-alpha");
  });
});

describe("chat API program against a loopback runtime stand-in", () => {
  const TOKEN = "pct_loopback_secret_token";
  type Chat = { id: string; status: string; budgetTokens?: number | null };
  const chats = new Map<string, Chat>();
  const seen: string[] = [];
  let base = "";
  let server: import("node:http").Server;

  beforeAll(async () => {
    const { createServer } = await import("node:http");
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen.push(`${req.method} ${req.url}`);
        const send = (status: number, json: unknown) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(json));
        };
        if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: { code: "unauthorized", message: "bad token" } });
        const b = /^\/v1\/chats\/([a-z0-9-]+)\/budget$/.exec(req.url ?? "");
        if (b && req.method === "PUT") {
          const chat = chats.get(b[1]!);
          if (!chat) return send(404, { error: { message: "No chat" } });
          chat.budgetTokens = (JSON.parse(body) as { budgetTokens: number }).budgetTokens;
          return send(200, chat);
        }
        const m = /^\/v1\/chats(?:\/([a-z0-9-]+))?(\?purge=1)?$/.exec(req.url ?? "");
        if (!m) return send(404, { error: { message: "no route" } });
        if (req.method === "POST") {
          const { id, budgetTokens } = JSON.parse(body) as { id: string; budgetTokens?: number };
          if (chats.has(id)) return send(409, { error: { code: "conflict", message: `Chat ${id} already exists` } });
          chats.set(id, { id, status: "ready", budgetTokens: budgetTokens ?? null });
          return send(201, { id, status: "ready", isolation: `Linux user pc-${id}`, budgetTokens: budgetTokens ?? null });
        }
        if (req.method === "GET" && m[1]) return chats.has(m[1]) ? send(200, chats.get(m[1])) : send(404, { error: { message: "No chat" } });
        if (req.method === "DELETE" && m[1]) {
          if (!chats.delete(m[1])) return send(404, { error: { message: `No chat ${m[1]}.` } });
          return send(200, { id: m[1], deleted: true, purged: !!m[2], archivePath: m[2] ? null : `/var/lib/picortex/archives/${m[1]}.tar.gz` });
        }
        send(405, {});
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return () => server.close();
  });

  async function run(action: "create" | "delete", env: Record<string, string>) {
    const { spawn } = await import("node:child_process");
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["-e", chatApiScript(action)], { env: { PATH: process.env.PATH!, ...env } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }
  const env = (id: string, extra: Record<string, string> = {}) => ({ PICORTEX_RUNTIME_URL: base, PICORTEX_API_TOKEN: TOKEN, PICORTEX_CHAT_ID: id, PICORTEX_CHAT_ON_DELETE: "archive", ...extra });

  it("creates a chat, then adopts it on a re-run; never prints the token", async () => {
    const first = await run("create", env("team-alpha", { PICORTEX_CHAT_BUDGET: "500" }));
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ id: "team-alpha", status: "ready", isolation: "Linux user pc-team-alpha" });
    const again = await run("create", env("team-alpha"));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("adopted");
    for (const out of [first, again]) expect(out.stdout + out.stderr).not.toContain(TOKEN);
  });

  it("applies a changed budget when it adopts an existing chat (issue 21 item 19)", async () => {
    const again = await run("create", env("team-alpha", { PICORTEX_CHAT_BUDGET: "777" }));
    expect(again.code, again.stderr).toBe(0);
    expect(seen).toContain("PUT /v1/chats/team-alpha/budget");
    expect(chats.get("team-alpha")!.budgetTokens).toBe(777);
    const n = seen.length;
    await run("create", env("team-alpha", { PICORTEX_CHAT_BUDGET: "777" }));
    expect(seen.slice(n).filter((x) => x.startsWith("PUT"))).toEqual([]);
  });

  it("deletes (archiving by default, purging on request) and treats an absent chat as deleted", async () => {
    const del = await run("delete", env("team-alpha"));
    expect(del.code).toBe(0);
    expect(del.stderr).toContain("archived at /var/lib/picortex/archives/team-alpha.tar.gz");
    expect(seen).toContain("DELETE /v1/chats/team-alpha");
    const gone = await run("delete", env("team-alpha"));
    expect(gone.code).toBe(0);
    expect(gone.stderr).toContain("already gone");
    await run("create", env("beta"));
    await run("delete", env("beta", { PICORTEX_CHAT_ON_DELETE: "purge" }));
    expect(seen).toContain("DELETE /v1/chats/beta?purge=1");
  });

  it("fails clearly on a wrong token or an unreachable runtime", async () => {
    const bad = await run("create", env("gamma", { PICORTEX_API_TOKEN: "wrong" }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("HTTP 401");
    const down = await run("create", env("gamma", { PICORTEX_RUNTIME_URL: "http://127.0.0.1:1" }));
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot reach the runtime");
    expect(down.stderr).toContain("tailnet");
  });
});
