import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REAL_KEY, createChat, sendTurn, setupHostFixtures, startTestRuntime, type TestRuntime } from "./helpers.js";

/** Runs argv as a chat user, the way a chat's own tools (Bash) would. */
// Asynchronous: a synchronous search over the whole filesystem can run longer than a
// minute under load, and a worker blocked that long misses vitest's 60 s RPC deadline
// ("Timeout calling onTaskUpdate" fails the whole run).
function asUser(user: string, argv: string[]): Promise<{ stdout: string; stderr: string; status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/sudo", ["-n", "-H", "-u", user, "--", ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ stdout, stderr, status }));
  });
}

describe("host mode: a real Linux user per chat, real sudo", { timeout: 240_000 }, () => {
  const ids = ["hm-alpha", "hm-beta"];
  let fixtures: ReturnType<typeof setupHostFixtures>;
  let rt: TestRuntime;
  beforeAll(async () => {
    fixtures = setupHostFixtures([...ids, "hm-gone", "hm-retry"]);
    // Default runner settings: warm chats on, as on a real host.
    rt = await startTestRuntime({ mode: "host", chatsRoot: fixtures.chatsRoot, turns: { claudePath: fixtures.claudePath, chatUserHelper: fixtures.chatUserHelper } });
  });
  afterAll(async () => {
    await rt?.close();
    fixtures?.cleanup([...ids, "hm-gone", "hm-retry"]);
  });

  it("provisions each chat as its own user with a 0700 home and streams progress events over SSE", async () => {
    const res = await fetch(rt.url + "/v1/chats", {
      method: "POST",
      headers: { authorization: `Bearer ${rt.token}`, accept: "text/event-stream", "content-type": "application/json" },
      body: JSON.stringify({ id: "hm-alpha" }),
    });
    const text = await res.text();
    const progress = [...text.matchAll(/event: progress\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
    expect(progress.map((p) => p.step)).toEqual(["create_user", "install_cli", "install_cli", "configure_api", "complete"]);
    for (const p of progress) expect(Object.keys(p).sort()).toEqual(["message", "progress", "step"]);
    expect(text).toContain("event: ready");
    await createChat(rt, "hm-beta");
    for (const id of ids) {
      const home = `${fixtures.chatsRoot}/${id}`;
      const st = statSync(home);
      expect(st.mode & 0o777).toBe(0o700);
      expect(st.uid).toBe(Number(execFileSync("id", ["-u", `pc-${id}`], { encoding: "utf8" }).trim()));
      expect(execFileSync("id", ["-gn", `pc-${id}`], { encoding: "utf8" }).trim()).toBe("picortex-chats");
      expect(statSync(`${home}/.claude/picortex-token`).mode & 0o777).toBe(0o600);
    }
  });

  it("runs turns as the chat user (warm, then cold with --resume), each carrying the earlier messages", async () => {
    const t1 = await rt.waitTurn("hm-alpha", await sendTurn(rt, "hm-alpha", "alpha one"));
    expect(t1.status, JSON.stringify(t1)).toBe("done");
    expect(t1.runner).toBe("warm");
    const warmPid = rt.turns.warm!.list().find((w) => w.chatId === "hm-alpha")!.pid!;
    // The warm process is sudo -> claude running as pc-hm-alpha.
    const child = execFileSync("pgrep", ["-P", String(warmPid)], { encoding: "utf8" }).trim().split("\n")[0]!;
    expect(execFileSync("ps", ["-o", "user=", "-p", child], { encoding: "utf8" }).trim()).toBe("pc-hm-alpha");
    const t2 = await rt.waitTurn("hm-alpha", await sendTurn(rt, "hm-alpha", "alpha two"));
    expect(t2.status, JSON.stringify(t2)).toBe("done");
    expect(rt.fake.messageRequests().at(-1)!.userTexts).toEqual(["alpha one", "alpha two"]);
    // Cold from here: the warm process is stopped (stdin closed, transcript flushed) and
    // the next turn is its own `sudo -u pc-hm-alpha claude -p --resume` process.
    await rt.turns.warm!.evict("hm-alpha", "test");
    rt.turns.engine["config"].warm.enabled = false;
    const t3 = await rt.waitTurn("hm-alpha", await sendTurn(rt, "hm-alpha", "alpha three"));
    expect(t3.status, JSON.stringify(t3)).toBe("done");
    expect(t3.runner).toBe("cold");
    const last = rt.fake.messageRequests().at(-1)!;
    expect(last.userTexts).toEqual(["alpha one", "alpha two", "alpha three"]);
    // The transcript lives in the chat user's own HOME, under its fixed workspace cwd.
    const projects = (await asUser("pc-hm-alpha", ["/usr/bin/ls", `${fixtures.chatsRoot}/hm-alpha/.claude/projects`]));
    expect(projects.stdout).toContain("workspace");
  });

  it("isolates chats: A cannot read or write B's workspace, and a chat cannot sudo", async () => {
    const bHome = `${fixtures.chatsRoot}/hm-beta`;
    expect((await asUser("pc-hm-alpha", ["/usr/bin/ls", bHome])).status).not.toBe(0);
    expect((await asUser("pc-hm-alpha", ["/usr/bin/cat", `${bHome}/.claude/picortex-token`])).status).not.toBe(0);
    expect((await asUser("pc-hm-alpha", ["/usr/bin/touch", `${bHome}/workspace/planted`])).status).not.toBe(0);
    expect(existsSync(`${bHome}/workspace/planted`)).toBe(false);
    const sudo = (await asUser("pc-hm-alpha", ["/usr/bin/sudo", "-n", "true"]));
    expect(sudo.status).not.toBe(0);
    expect(sudo.stderr).toMatch(/password is required|not allowed|may not run sudo/i);
  });

  it("never lets a chat see the real key: not on disk, not in its environment", async () => {
    // Everything the chat user can read in the places a key could end up.
    const grep = (await asUser("pc-hm-alpha", ["/usr/bin/grep", "-rlsF", REAL_KEY, "/etc", "/srv", "/var", "/tmp", "/home", "/root", rt.dataDir, fixtures.chatsRoot]));
    expect(grep.stdout.trim()).toBe("");
    expect(grep.status).not.toBe(0); // 1 or 2 (2 = some directories were unreadable, as they should be)
    // Positive control: the same search finds the chat's own token, so it really looked.
    const ownToken = (await asUser("pc-hm-alpha", ["/usr/bin/cat", `${fixtures.chatsRoot}/hm-alpha/.claude/picortex-token`])).stdout.trim();
    expect(ownToken).toMatch(/^pcc_/);
    const control = (await asUser("pc-hm-alpha", ["/usr/bin/grep", "-rlsF", ownToken, fixtures.chatsRoot]));
    expect(control.stdout).toContain("picortex-token");
    // The runtime's key file exists and holds the key, but the chat cannot open it.
    const cat = (await asUser("pc-hm-alpha", ["/usr/bin/cat", `${rt.dataDir}/anthropic-api-key`]));
    expect(cat.status).not.toBe(0);
    // The environment a turn runs with (same sudo path as a turn).
    const env = (await asUser("pc-hm-alpha", ["/usr/bin/env"]));
    expect(env.stdout).not.toContain(REAL_KEY);
    expect(env.stdout).not.toMatch(/ANTHROPIC_API_KEY/);
    // The upstream saw the real key; the chat only ever presented its own token.
    const last = rt.fake.messageRequests().at(-1)!;
    expect(last.headers["x-api-key"]).toBe(REAL_KEY);
    expect(last.headers["authorization"]).toBeUndefined();
  });

  it("reaps a chat's processes as the chat user (pkill -U via sudo), as a non-root runtime must on timeout", async () => {
    const sleeper = spawn("/usr/bin/sudo", ["-n", "-u", "pc-hm-alpha", "--", "/usr/bin/sleep", "300"], { stdio: "ignore" });
    let pid = "";
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pid = spawnSync("pgrep", ["-U", "pc-hm-alpha", "-x", "sleep"], { encoding: "utf8" }).stdout.trim();
    }
    expect(pid).not.toBe("");
    await rt.turns.host.reapAll("hm-alpha");
    if (sleeper.exitCode === null && sleeper.signalCode === null) await new Promise((r) => sleeper.once("exit", r));
    expect(spawnSync("pgrep", ["-U", "pc-hm-alpha"]).status).toBe(1); // nothing left
  });

  it("gives each chat's turns a private temp dir in its home", async () => {
    const settings = JSON.parse((await asUser("pc-hm-alpha", ["/usr/bin/cat", `${fixtures.chatsRoot}/hm-alpha/.claude/settings.json`])).stdout);
    expect(settings.env.TMPDIR).toBe(`${fixtures.chatsRoot}/hm-alpha/tmp`);
    expect(settings.env.CLAUDE_CODE_TMPDIR).toBe(`${fixtures.chatsRoot}/hm-alpha/tmp`);
    expect((await asUser("pc-hm-alpha", ["/usr/bin/stat", "-c", "%a %U", `${fixtures.chatsRoot}/hm-alpha/tmp`])).stdout.trim()).toBe("700 pc-hm-alpha");
  });

  it("deletes a chat: removes the user, archives the workspace, keeps the history unless purged", async () => {
    // What the chat leaves outside its home: a shared-temp file and a detached process.
    const uid = execFileSync("id", ["-u", "pc-hm-beta"], { encoding: "utf8" }).trim();
    const stray = `/tmp/hm-beta-left-${process.pid}`;
    expect((await asUser("pc-hm-beta", ["/usr/bin/sh", "-c", `echo left > ${stray}; setsid sleep 600 </dev/null >/dev/null 2>&1 &`])).status).toBe(0);
    expect(existsSync(stray)).toBe(true);
    const del = await rt.call("DELETE", "/v1/chats/hm-beta");
    expect(del.status, del.text).toBe(200);
    expect(existsSync(del.json.archivePath)).toBe(true);
    const listing = execFileSync("tar", ["-tzf", del.json.archivePath], { encoding: "utf8" });
    expect(listing).toContain("./workspace/");
    expect(spawnSync("id", ["pc-hm-beta"]).status).not.toBe(0);
    expect(existsSync(`${fixtures.chatsRoot}/hm-beta`)).toBe(false);
    expect(existsSync(stray)).toBe(false);
    expect(spawnSync("pgrep", ["-U", uid]).status).toBe(1);
    const alphaTurns = await rt.call("GET", "/v1/chats/hm-alpha/messages");
    expect(alphaTurns.json.messages.length).toBe(6);
    const del2 = await rt.call("DELETE", "/v1/chats/hm-alpha?purge=1");
    expect(del2.status, del2.text).toBe(200);
    expect((await rt.call("GET", "/v1/chats/hm-alpha")).status).toBe(404);
  });

  it("deletes a chat whose Linux user is already gone (half-provisioned or removed by hand) without an error", async () => {
    const chat = await createChat(rt, "hm-gone");
    expect(chat.status).toBe("ready");
    execFileSync("/usr/sbin/userdel", ["--remove", "pc-hm-gone"]);
    const del = await rt.call("DELETE", "/v1/chats/hm-gone");
    expect(del.status, del.text).toBe(200);
    expect(del.json.archivePath).toBeNull();
    expect((await rt.call("GET", "/v1/chats/hm-gone")).json.status).toBe("deleted");
  });

  it("finishes a delete that failed half-way when it is repeated, instead of reporting it done", async () => {
    expect((await createChat(rt, "hm-retry")).status).toBe("ready");
    // The state a failed removal leaves: marked deleted, user and home still on the host.
    rt.turns.store.markDeleted("hm-retry", null, false);
    expect(spawnSync("id", ["pc-hm-retry"]).status).toBe(0);
    const del = await rt.call("DELETE", "/v1/chats/hm-retry");
    expect(del.status, del.text).toBe(200);
    expect(spawnSync("id", ["pc-hm-retry"]).status).not.toBe(0);
    expect(existsSync(`${fixtures.chatsRoot}/hm-retry`)).toBe(false);
    expect(existsSync(del.json.archivePath)).toBe(true);
    expect(statSync(del.json.archivePath).mode & 0o777).toBe(0o600);
    expect(existsSync(`${del.json.archivePath}.partial`)).toBe(false);
    // Once everything is gone, a further delete is a quiet no-op with the same answer.
    const again = await rt.call("DELETE", "/v1/chats/hm-retry");
    expect(again.status).toBe(200);
    expect(again.json.archivePath).toBe(del.json.archivePath);
  });
});
