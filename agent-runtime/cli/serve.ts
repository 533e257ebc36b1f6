import type { Command } from "commander";
import { loadRuntimeConfig, ConfigError } from "../config/load.js";
import { loadRuntimeSecrets } from "../config/secrets.js";
import { startRuntime } from "../server.js";
import { createLogger } from "../log.js";

interface ServeOptions {
  config?: string;
  local?: boolean;
  host?: string[];
  port?: string;
  dataDir?: string;
  json?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("Run the agent runtime (portal, chat turns, brain) as one service.")
    .option("-c, --config <file>", "JSON config file (default: $PICORTEX_CONFIG)")
    .option("--local", "local mode: chats run as the current user (weaker isolation, no sudo needed)")
    .option("--host <address...>", "addresses to bind (default: 127.0.0.1)")
    .option("--port <port>", "port to listen on (default: 7420; 0 picks a free one)")
    .option("--data-dir <dir>", "where the database and tokens live (default: ./.picortex)")
    .option("--json", "print the startup summary as one JSON line on stdout")
    .action(async (opts: ServeOptions) => {
      const log = createLogger();
      let config;
      try {
        config = loadRuntimeConfig({
          file: opts.config,
          overrides: {
            mode: opts.local ? "local" : undefined,
            dataDir: opts.dataDir,
            server: {
              hosts: opts.host,
              port: opts.port === undefined ? undefined : Number(opts.port),
            },
          },
        });
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`picortex: ${err.message}\n`);
          process.exit(2);
        }
        throw err;
      }
      const secrets = loadRuntimeSecrets();
      const runtime = await startRuntime(config, log, secrets);
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({ urls: runtime.urls, mode: config.mode, dataDir: config.dataDir, tokenFile: `${config.dataDir}/api-token` }) + "\n",
        );
      } else {
        const lines = [
          `picortex runtime listening on ${runtime.urls.join(", ")} (${config.mode} mode)`,
          config.mode === "local"
            ? "  local mode: chats run as the current user with their own HOME and config dir (weaker isolation than host mode)"
            : "  host mode: each chat runs as its own Linux user",
          `  data: ${config.dataDir}`,
          // The token is printed once, to the terminal that started the runtime, never to the log.
          runtime.tokenCreated
            ? `  API token (stored 0600 in ${config.dataDir}/api-token): ${runtime.apiToken}`
            : `  API token: in ${config.dataDir}/api-token`,
          config.portal.enabled ? "  portal: `npx picortex portal token` prints a sign-in link (the token rides after #)" : "",
          config.turns.enabled ? "  chats:  `npx picortex chat create demo` then `npx picortex chat send demo \"hello\"`" : "",
          config.brain.enabled ? "  brain:  `npx picortex brain --help` (record, recall, sync, mcp)" : "",
          config.turns.enabled && config.mode === "local" && !secrets.anthropicApiKey && !config.turns.apiKeyFile
            ? "  note: no Anthropic key yet; export ANTHROPIC_API_KEY (or set turns.apiKeyFile) and restart, or chat turns will fail"
            : "",
        ].filter((line) => line !== "");
        process.stdout.write(lines.join("\n") + "\n");
      }
      const stop = async (signal: string) => {
        log.info(`received ${signal}, shutting down`);
        await runtime.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });
}
