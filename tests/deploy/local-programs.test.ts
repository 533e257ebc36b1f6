/**
 * The programs the components run locally with `node -e` are real files
 * (components/programs/*.cjs, type-checked by tsc). The command text is the file's text
 * (the chat program with its action set), and each file runs on its own as well.
 * The behaviour under `node -e` is covered in runtime-deployment.test.ts (readiness) and
 * chat-stack.test.ts / chat-api-contract.test.ts (chat API).
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { READINESS_SCRIPT } from "../../components/runtime-deployment.js";
import { chatApiScript } from "../../components/chat-workspace.js";

const programs = join(import.meta.dirname, "../../components/programs");
const file = (name: string) => readFileSync(join(programs, name), "utf8");

function run(argv: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { env: { PATH: process.env.PATH!, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function listen<T extends Server | ReturnType<typeof createHttpServer>>(server: T): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

describe("local programs are files", () => {
  it("the readiness command is ssh-readiness.cjs as it is", () => {
    expect(READINESS_SCRIPT).toBe(file("ssh-readiness.cjs").trim());
    expect(READINESS_SCRIPT.startsWith("// @ts-check")).toBe(true);
  });

  it("the chat commands are chat-api.cjs with only the action line set", () => {
    const text = file("chat-api.cjs").trim();
    expect(chatApiScript("create")).toBe(text);
    const del = chatApiScript("delete");
    const a = text.split("\n");
    const b = del.split("\n");
    expect(b.length).toBe(a.length);
    const differing = a.map((line, i) => (line === b[i] ? -1 : i)).filter((i) => i >= 0);
    expect(differing).toHaveLength(1);
    expect(b[differing[0]!]).toBe('const action = "delete";');
  });

  it("ssh-readiness.cjs, run as a file, waits for an SSH banner", async () => {
    const sshd = createServer((s) => s.end("SSH-2.0-OpenSSH_9.6\r\n"));
    const port = await listen(sshd);
    try {
      const r = await run([join(programs, "ssh-readiness.cjs")], { PICORTEX_SSH_HOST: "127.0.0.1", PICORTEX_SSH_PORT: String(port), PICORTEX_READY_ATTEMPTS: "3", PICORTEX_READY_DELAY_MS: "50" });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`ssh on 127.0.0.1:${port} is up (attempt 1)`);
    } finally {
      sshd.close();
    }
  });

  it("ssh-readiness.cjs fails after its attempts when something that is not sshd answers", async () => {
    const http = createServer((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    const port = await listen(http);
    try {
      const r = await run([join(programs, "ssh-readiness.cjs")], { PICORTEX_SSH_HOST: "127.0.0.1", PICORTEX_SSH_PORT: String(port), PICORTEX_READY_ATTEMPTS: "2", PICORTEX_READY_DELAY_MS: "10" });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("did not answer after 2 attempts");
    } finally {
      http.close();
    }
  });

  it("chat-api.cjs, run as a file, creates (its default action) with the token in a header only", async () => {
    const seen: Array<{ method?: string; url?: string; auth?: string; body: string }> = [];
    const api = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id: "alpha", status: "ready", isolation: "Linux user pc-alpha" }));
      });
    });
    const port = await listen(api);
    try {
      const r = await run([join(programs, "chat-api.cjs")], { PICORTEX_RUNTIME_URL: `http://127.0.0.1:${port}`, PICORTEX_API_TOKEN: "tok-secret", PICORTEX_CHAT_ID: "alpha", PICORTEX_CHAT_BUDGET: "5000" });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ id: "alpha", status: "ready", isolation: "Linux user pc-alpha" });
      expect(seen).toEqual([{ method: "POST", url: "/v1/chats", auth: "Bearer tok-secret", body: JSON.stringify({ id: "alpha", budgetTokens: 5000 }) }]);
      expect(r.stderr).not.toContain("tok-secret");
    } finally {
      api.close();
    }
  });

  it("chat-api.cjs refuses to run without its environment", async () => {
    const r = await run([join(programs, "chat-api.cjs")], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("PICORTEX_RUNTIME_URL, PICORTEX_API_TOKEN and PICORTEX_CHAT_ID must be set");
  });
});
