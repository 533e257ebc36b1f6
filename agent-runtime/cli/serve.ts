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
      const runtime = await startRuntime(config, log, loadRuntimeSecrets());
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
          `  try: curl -H "Authorization: Bearer $(cat ${config.dataDir}/api-token)" ${runtime.urls[0]}/healthz`,
        ];
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
