/**
 * Explicit expected files (committed under tests/infra/__snapshots__/). A missing or
 * different file FAILS; regenerate deliberately with UPDATE_SNAPSHOTS=1 and review the
 * diff, because a change to host output replaces servers that apply template changes.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { expect } from "vitest";

const dir = new URL("../__snapshots__/", import.meta.url);

export function expectMatchesFile(actual: string, name: string): void {
  const path = new URL(name, dir).pathname;
  if (process.env.UPDATE_SNAPSHOTS === "1") {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) throw new Error(`expected file ${path} is missing; create it with UPDATE_SNAPSHOTS=1 and review it`);
  const expected = readFileSync(path, "utf8");
  // toBe on the whole text: byte-for-byte, with a readable diff on failure.
  expect(actual, `${name} differs from the committed expected file (UPDATE_SNAPSHOTS=1 to accept)`).toBe(expected);
}
