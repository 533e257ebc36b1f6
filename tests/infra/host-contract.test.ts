/**
 * The host contract (agent-runtime/host/contract.ts) is the one place where the host's
 * names, paths, binaries and rules are written. These tests fail when a copy comes back:
 * a module that spells a contract path or unit name as a string literal of its own, a
 * second Linux-name regex, or a doctor escalation list that drifts from the tested one.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as contract from "../../agent-runtime/host/contract.js";
import { releaseHelperEscalations, sudoEscalations } from "../../agent-runtime/host/escalations.js";
import { escalations, parseDoctorArgs } from "../../scripts/doctor.js";

const root = join(import.meta.dirname, "../..");
const CONTRACT = "agent-runtime/host/contract.ts";

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (name === "node_modules" || name === "dist") continue;
    if (statSync(join(root, rel)).isDirectory()) out.push(...sources(rel));
    else if (/\.(ts|mts|mjs)$/.test(name)) out.push(rel);
  }
  return out;
}
/** Production code (tests keep literal expectations on purpose: they are the oracle). */
const productionFiles = ["agent-runtime", "templates", "components", "scripts", "stacks"].flatMap(sources).filter((f) => f !== CONTRACT);

/** Every string fact in the contract that names a host path, a unit or an account. */
const facts = Object.entries(contract)
  .filter((e): e is [string, string] => typeof e[1] === "string")
  .filter(([, v]) => v.startsWith("/") || /^picortex-[a-z-]+(\.service)?$/.test(v));
const binaries = Object.values(contract.BIN);

/** Literals that are spelled like a contract fact but are another fact: the brain project the chats share. */
const SAME_SPELLING_OTHER_FACT: Array<[string, string]> = [
  ["agent-runtime/config/brain.ts", "picortex-chats"],
  ["agent-runtime/cli/brain-mcp.ts", "picortex-chats"],
];

/** Block comments and whole-line `//` comments (prose may name a path; code may not). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

describe("host contract", () => {
  it("is a leaf: it imports nothing", () => {
    const text = readFileSync(join(root, CONTRACT), "utf8");
    expect(text).not.toMatch(/^\s*import\s/m);
    expect(text).not.toMatch(/\bfrom\s+["']/);
  });

  it("has facts to guard (the filter below is not vacuous)", () => {
    const names = facts.map(([k]) => k);
    for (const k of ["RELEASE_HELPER_PATH", "SUDOERS_DROPIN_PATH", "RUNTIME_UNIT", "AGENT_HOME", "STATE_DIR", "TMUX_PATH", "CHAT_USER_HELPER_PATH"]) expect(names).toContain(k);
    expect(binaries).toContain("/usr/bin/sudo");
  });

  it("no production module spells a contract path, unit, account or binary as a literal of its own", () => {
    const copies: string[] = [];
    for (const file of productionFiles) {
      const text = withoutComments(readFileSync(join(root, file), "utf8"));
      for (const value of [...facts.map(([, v]) => v), ...binaries]) {
        for (const q of ['"', "'", "`"]) {
          if (text.includes(`${q}${value}${q}`) && !SAME_SPELLING_OTHER_FACT.some(([f, v]) => f === file && v === value)) copies.push(`${file}: ${q}${value}${q}`);
        }
      }
    }
    expect(copies).toEqual([]);
  });

  it("has the one Linux-name rule: no other module writes a user-name regex", () => {
    const copies = productionFiles.filter((f) => /\[a-z_?\]\[a-z0-9_-\]/.test(readFileSync(join(root, f), "utf8")));
    expect(copies).toEqual([]);
    expect(contract.LINUX_NAME_PATTERN.test("pcadmin")).toBe(true);
    expect(contract.LINUX_NAME_PATTERN.test("a".repeat(31))).toBe(true);
    for (const bad of ["a".repeat(32), "_x", "1x", "Ab", "a.b", "", "root;id"]) expect(contract.LINUX_NAME_PATTERN.test(bad), bad).toBe(false);
  });

  it("derives the release-args rule from the release-hash rule", () => {
    const args = new RegExp(contract.RELEASE_ARGS_REGEX);
    expect(args.test("install 0123456789ab")).toBe(true);
    expect(args.test("status")).toBe(true);
    expect(args.test("install 0123456789a")).toBe(false);
    expect(contract.RELEASE_HASH_PATTERN.test("a".repeat(64))).toBe(true);
    expect(contract.RELEASE_HASH_PATTERN.test("a".repeat(65))).toBe(false);
    expect(contract.CURRENT_RELEASE_TARGET_PATTERN.test("releases/0123456789ab")).toBe(true);
    expect(contract.CURRENT_RELEASE_TARGET_PATTERN.test("/opt/picortex/releases/0123456789ab")).toBe(true);
    expect(contract.CURRENT_RELEASE_TARGET_PATTERN.test("/tmp/releases/0123456789ab")).toBe(false);
  });

  it("doctor checks exactly the escalation list the sudoers test proves refused (and the release-helper list)", () => {
    const o = parseDoctorArgs([]).options;
    const doctor = escalations(o).map(([label]) => label);
    const tested = sudoEscalations({ ...o, chatUserHelperPath: contract.CHAT_USER_HELPER_PATH, chat: "evil" }).map(([label]) => label);
    const release = releaseHelperEscalations(contract.RELEASE_HELPER_PATH, "0123456789abcdef").map(([label]) => label);
    expect(doctor).toEqual([...tested, ...release]);
    expect(doctor.length).toBeGreaterThanOrEqual(40);
    expect(readFileSync(join(root, "tests/infra/sudoers-escalation.test.ts"), "utf8")).toMatch(/sudoEscalations\(/);
  });
});
