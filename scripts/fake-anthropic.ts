/**
 * Try a turn without a key: the project's fake Anthropic Messages API (the one the tests
 * use, tests/support/fake-anthropic-api.ts) on loopback. Every reply is
 * `reply #<n>: <your last message>`, streamed in the real wire format.
 *
 *   npm run fake-anthropic -- --port 7430       # then, in the shell that runs `npm start`:
 *   export ANTHROPIC_BASE_URL=http://127.0.0.1:7430 ANTHROPIC_API_KEY=sk-ant-fake
 */
import { parseArgs } from "node:util";
import { startFakeAnthropicApi } from "../tests/support/fake-anthropic-api.js";

const USAGE = "Usage: npm run fake-anthropic -- [--port N] [--host 127.0.0.1]";

let values: { port?: string; host?: string; help?: boolean };
try {
  ({ values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" }, help: { type: "boolean", short: "h" } } }));
} catch (err) {
  process.stderr.write(`fake-anthropic: ${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\nA fake Anthropic Messages API on loopback, to try picortex chats without a key (0 or no --port: a free port).\n`);
  process.exit(0);
}
const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`fake-anthropic: --port must be 0-65535, not ${JSON.stringify(values.port)}\n${USAGE}\n`);
  process.exit(2);
}
const api = await startFakeAnthropicApi({ port, host: values.host ?? "127.0.0.1" });
process.stdout.write(
  [
    `Fake Anthropic Messages API on ${api.url} (replies "reply #<n>: <your message>"). In the shell that runs \`npm start\`:`,
    `  export ANTHROPIC_BASE_URL=${api.url} ANTHROPIC_API_KEY=sk-ant-fake`,
    "Ctrl-C stops it.",
    "",
  ].join("\n"),
);
const stop = () => void api.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
