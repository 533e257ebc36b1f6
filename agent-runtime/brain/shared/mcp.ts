import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import { BrainError } from "./errors.js";
import { ENTRY_KINDS } from "./entry.js";
import { formatEntry, formatRecall } from "./format.js";
import type { BrainService } from "./service.js";
import { entryJson, recallJson } from "./json-shapes.js";

// Not imported from server.ts: that would load every runtime module into a stdio tool.
const MCP_SERVER_VERSION = "0.1.0";

/**
 * `picortex brain mcp`: the brain as MCP tools over stdio, so Claude Code, Codex,
 * OpenCode and Hermes call record/recall natively. Writes go to the same local store
 * as the CLI; `picortex brain sync` (or a timer) replicates them.
 */
export function createBrainMcpServer(service: BrainService): McpServer {
  const server = new McpServer({ name: "picortex-brain", version: MCP_SERVER_VERSION });

  server.registerTool(
    "brain_recall",
    {
      title: "Recall from the brain",
      description:
        "Search what agents already tried, decided and learned before planning. Full-text, BM25-ranked; conclusions first. Defaults to this repo; set org=true for the whole workspace.",
      inputSchema: {
        query: z.string().max(500).describe("Words to search for; empty lists the most recent entries"),
        org: z.boolean().optional().describe("Search the whole workspace instead of this repo"),
        kind: z.enum(ENTRY_KINDS).optional(),
        agent: z.string().max(128).optional(),
        tags: z.array(z.string().max(64)).max(16).optional(),
        limit: z.number().int().min(1).max(50).optional(),
        all: z.boolean().optional().describe("Include superseded entries"),
      },
    },
    async (args) => {
      const result = service.recall(args.query, args);
      const scope = args.org ? `workspace ${service.identity.workspaceId}` : `project ${service.identity.projectId}`;
      return {
        content: [{ type: "text" as const, text: formatRecall(args.query, result, scope) }],
        structuredContent: recallJson(args.query, result),
      };
    },
  );

  server.registerTool(
    "brain_record",
    {
      title: "Record to the brain",
      description:
        "Record an experiment, decision, insight or note so every later agent recalls it. Put the reusable takeaway in `conclusion`.",
      inputSchema: {
        title: z.string().min(1).max(500),
        summary: z.string().max(20_000).optional().describe("What was done"),
        conclusion: z.string().max(20_000).optional().describe("What was learned: the part that compounds"),
        kind: z.enum(ENTRY_KINDS).optional(),
        tags: z.array(z.string().min(1).max(64)).max(64).optional(),
        refs: z.array(z.string().min(1).max(256)).max(64).optional(),
        confidence: z.number().min(0).max(1).optional(),
        agent: z.string().min(1).max(128).optional(),
      },
    },
    async (args) => {
      try {
        const entry = service.record(args);
        return {
          content: [{ type: "text" as const, text: `Recorded ${entry.entryId}\n${formatEntry(entry)}` }],
          structuredContent: { entry: entryJson(entry) },
        };
      } catch (err) {
        if (err instanceof BrainError) return { isError: true, content: [{ type: "text" as const, text: err.message }] };
        throw err;
      }
    },
  );

  return server;
}

/** Serves until stdin closes. Nothing but protocol goes to stdout. */
export async function runBrainMcpServer(service: BrainService): Promise<void> {
  const server = createBrainMcpServer(service);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once("end", () => resolve());
  });
  await server.connect(transport);
  await closed;
  await server.close();
}
