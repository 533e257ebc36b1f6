import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BrainConfigError, loadBrainClientConfig, normalizeRemoteUrl, readBrainToken, resolveProjectId } from "../../agent-runtime/config/brain.js";
import { tempDir } from "./helpers.js";

describe("brain client configuration", () => {
  it("normalizes every form of a remote URL to the same project id", () => {
    for (const url of [
      "git@github.com:Acme/API.git",
      "https://github.com/acme/api",
      "https://github.com/acme/api.git/",
      "ssh://git@github.com/acme/api.git",
      "https://user@github.com/Acme/API",
    ]) {
      expect(normalizeRemoteUrl(url)).toBe("github.com/acme/api");
    }
    expect(normalizeRemoteUrl("not a url")).toBeUndefined();
  });

  it("resolves the project from a git worktree's common config, else the directory", () => {
    const t = tempDir();
    try {
      const main = join(t.dir, "main");
      mkdirSync(join(main, ".git", "worktrees", "wt"), { recursive: true });
      writeFileSync(join(main, ".git", "config"), '[remote "origin"]\n\turl = https://gitlab.com/Org/Thing.git\n');
      writeFileSync(join(main, ".git", "worktrees", "wt", "commondir"), "../..\n");
      const wt = join(t.dir, "wt");
      mkdirSync(join(wt, "deep"), { recursive: true });
      writeFileSync(join(wt, ".git"), `gitdir: ${join(main, ".git", "worktrees", "wt")}\n`);
      expect(resolveProjectId(join(wt, "deep"))).toEqual({ projectId: "gitlab.com/org/thing", source: "git-remote" });
      const plain = join(t.dir, "plain");
      mkdirSync(plain);
      expect(resolveProjectId(plain).source).toBe("dir");
    } finally {
      t.cleanup();
    }
  });

  it("env wins over the config file, which wins over defaults; bad values are named", () => {
    const t = tempDir();
    try {
      const file = join(t.dir, "brain.json");
      writeFileSync(file, JSON.stringify({ workspaceId: "from-file", serverUrl: "http://127.0.0.1:7420", agent: "file-agent" }));
      const env = { HOME: t.dir, PICORTEX_BRAIN_CONFIG: file, PICORTEX_PROJECT_ID: "p" };
      expect(loadBrainClientConfig(env, t.dir)).toMatchObject({
        workspaceId: "from-file",
        agent: "file-agent",
        serverUrl: "http://127.0.0.1:7420",
        dbPath: join(t.dir, ".picortex", "brain.sqlite"),
        tokenFile: join(t.dir, ".picortex", "brain-token"),
      });
      expect(loadBrainClientConfig({ ...env, PICORTEX_WORKSPACE_ID: "from-env" }, t.dir).workspaceId).toBe("from-env");
      expect(() => loadBrainClientConfig({ ...env, PICORTEX_WORKSPACE_ID: "bad id!" }, t.dir)).toThrow(/PICORTEX_WORKSPACE_ID="bad id!"/);
      writeFileSync(file, JSON.stringify({ workspaceId: "x", token: "secret" }));
      expect(() => loadBrainClientConfig(env, t.dir)).toThrow(BrainConfigError);
      writeFileSync(file, "{nope");
      expect(() => loadBrainClientConfig(env, t.dir)).toThrow(/not valid JSON/);
    } finally {
      t.cleanup();
    }
  });

  it("reads the token from env or a 0600 file, and refuses a readable one", () => {
    const t = tempDir();
    try {
      const tokenFile = join(t.dir, "tok");
      const base = loadBrainClientConfig({ HOME: t.dir, PICORTEX_PROJECT_ID: "p", PICORTEX_BRAIN_TOKEN_FILE: tokenFile }, t.dir);
      expect(() => readBrainToken(base)).toThrow(/No brain sync token.*token create --workspace local/);
      writeFileSync(tokenFile, "pcb_abc\n", { mode: 0o600 });
      expect(readBrainToken(base)).toBe("pcb_abc");
      chmodSync(tokenFile, 0o640);
      expect(() => readBrainToken(base)).toThrow(/readable by others.*chmod 600/);
      expect(readBrainToken({ ...base, token: "pcb_env" })).toBe("pcb_env");
    } finally {
      t.cleanup();
    }
  });
});
