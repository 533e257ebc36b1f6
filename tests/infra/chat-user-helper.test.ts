/**
 * The chat-user helper's own argument checks (sudo's regex cannot count arguments) and
 * its renderer. The helper runs here as an unprivileged user, so it stops right after
 * validation ("must run as root") and can never create anything.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHAT_ID_PATTERN } from "../../agent-runtime/host/contract.js";
import { renderChatUserHelper, loadChatUserHelperTemplate } from "../../templates/render-chat-user-helper.js";
import { run } from "./support/tools.js";

const dir = mkdtempSync(join(tmpdir(), "pc-helper-"));
chmodSync(dir, 0o755);
const helper = join(dir, "picortex-chat-user");
writeFileSync(helper, renderChatUserHelper({ chatsRoot: "/srv/picortex/chats", chatGroup: "picortex-chats" }), { mode: 0o755 });
const asNobody = (args: string[]) =>
  process.getuid?.() === 0 ? run(["runuser", "-u", "nobody", "--", "bash", helper, ...args]) : run(["bash", helper, ...args]);

describe("picortex-chat-user argument checks", () => {
  const ids = [
    "ab", "team-alpha", "a1", "a-b-c", "x".repeat(24),
    "a", "x".repeat(25), "ab-", "a--b", "-ab", "1ab", "Ab", "a_b", "a.b", "a/b", "a b", "ab\n", "", "a-", "abc--", "é",
  ];
  for (let i = 0; i < 60; i++) {
    const alphabet = "ab-1Z ._";
    ids.push(Array.from({ length: 1 + ((i * 7) % 27) }, (_, j) => alphabet[(i * 31 + j * 17) % alphabet.length]).join(""));
  }
  it("accepts exactly the ids CHAT_ID_PATTERN accepts", () => {
    for (const id of ids) {
      const r = asNobody(["create", id]);
      if (CHAT_ID_PATTERN.test(id)) {
        expect([r.status, r.stderr], JSON.stringify(id)).toEqual([1, expect.stringMatching(/must run as root/)]);
      } else {
        expect([r.status, r.stderr], JSON.stringify(id)).toEqual([2, expect.stringMatching(/invalid chat id/)]);
      }
    }
  });

  it("takes exactly two arguments and two commands", () => {
    for (const args of [[], ["create"], ["create", "ab", "cd"], ["create ab"], ["remove", "ab"], ["--help"], ["create", "ab", "--gid", "root"]]) {
      const r = asNobody(args);
      expect(r.status, JSON.stringify(args)).toBe(2);
      expect(r.stderr).toMatch(/usage/);
    }
  });
});

describe("renderChatUserHelper", () => {
  it("fills every placeholder and refuses unsafe values", () => {
    const text = renderChatUserHelper({ chatsRoot: "/srv/x/chats", chatGroup: "picortex-chats" });
    expect(text).not.toMatch(/@[A-Z_]+@/);
    expect(text).toContain('readonly CHATS_ROOT="/srv/x/chats"');
    expect(text).toContain("readonly UID_MIN=70000");
    expect(() => renderChatUserHelper({ chatsRoot: "/srv/x/$(id)", chatGroup: "picortex-chats" })).toThrow(/absolute path/);
    expect(() => renderChatUserHelper({ chatsRoot: "/srv/x", chatGroup: "bad group" })).toThrow();
    expect(() => renderChatUserHelper({ chatsRoot: "/srv/x", chatGroup: "g", uidMin: 0 })).toThrow(/uid range/);
    expect(() => renderChatUserHelper({ chatsRoot: "/srv/x", chatGroup: "g" }, loadChatUserHelperTemplate() + "@NOPE@")).toThrow(/unknown placeholder/);
  });
});
