import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

// The SDK's real client spawns `picortex brain mcp` over stdio, as Claude Code would.
const BIN = resolve("agent-runtime/bin/picortex.mjs");

describe("picortex brain mcp", () => {
  const tmp = tempDir("picortex-brain-mcp-");
  afterAll(() => tmp.cleanup());
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: tmp.dir,
    PICORTEX_BRAIN_DB: join(tmp.dir, "brain.sqlite"),
    PICORTEX_WORKSPACE_ID: "acme",
    PICORTEX_PROJECT_ID: "github.com/acme/api",
    PICORTEX_AGENT: "claude-code",
  };

  it("lists record/recall tools and round-trips an entry; the CLI sees what MCP recorded", async () => {
    const client = new Client({ name: "picortex-test", version: "0.0.0" });
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "brain", "mcp"], env, stderr: "pipe" });
    await client.connect(transport);
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name).sort()).toEqual(["brain_recall", "brain_record"]);
      const recallTool = tools.tools.find((t) => t.name === "brain_recall")!;
      expect(Object.keys(recallTool.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(["query", "org", "kind", "limit"]));

      const recorded = await client.callTool({
        name: "brain_record",
        arguments: { title: "Flaky e2e was a port race", conclusion: "bind port 0 and read it back", kind: "insight", tags: ["tests"] },
      });
      expect(recorded.isError).toBeFalsy();
      const entry = (recorded.structuredContent as { entry: { id: string; agent: string; kind: string } }).entry;
      expect(entry).toMatchObject({ agent: "claude-code", kind: "insight" });

      const recalled = await client.callTool({ name: "brain_recall", arguments: { query: "port race?" } });
      const text = (recalled.content as Array<{ type: string; text: string }>)[0]!.text;
      expect(text.split("\n").find((l) => l.startsWith("•"))).toBe("• bind port 0 and read it back");
      expect((recalled.structuredContent as { results: Array<{ id: string }> }).results.map((r) => r.id)).toEqual([entry.id]);

      const invalid = await client.callTool({ name: "brain_record", arguments: { title: "" } });
      expect(invalid.isError).toBe(true);

      // Same store as the CLI.
      const cliOut = JSON.parse(execFileSync(process.execPath, [BIN, "brain", "show", entry.id, "--json"], { env }).toString()) as { entry: { title: string } };
      expect(cliOut.entry.title).toBe("Flaky e2e was a port race");
    } finally {
      await client.close();
    }
  });
});
