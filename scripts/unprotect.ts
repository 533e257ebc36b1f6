/**
 * npx tsx scripts/unprotect.ts [--stack <name>]
 *
 * Lifts the workspace stack's protection before `pulumi destroy`, without touching the
 * host or re-running the deploy (issue 21 item 3):
 *   1. pulumi config set picortex:protection false
 *   2. pulumi stack output protectedUrns --json        (the server and the data volume)
 *   3. pulumi up --yes --skip-preview --target <each>   (in-place updates of those only)
 * Every other resource, the deploy steps included, is left as it is, so this works when
 * the host is down or unreachable. Needs the Pulumi CLI and the stack's credentials.
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";

const HELP = `Usage: npx tsx scripts/unprotect.ts [--stack <name>]
Lifts picortex:protection on the server and data volume only (a targeted pulumi up), so
that pulumi destroy can run. Never contacts the host.
`;

const URN = /^urn:pulumi:[^\s]+$/;

export function unprotectCommands(stack: string | undefined, protectedUrns: unknown): string[][] {
  const s = stack ? ["--stack", stack] : [];
  if (!Array.isArray(protectedUrns) || protectedUrns.length === 0 || !protectedUrns.every((u) => typeof u === "string" && URN.test(u))) {
    throw new Error("the stack output protectedUrns is missing or malformed: run `pulumi up` once with this version (its outputs are recorded even if the deploy fails), then retry");
  }
  return [["up", "--yes", "--skip-preview", ...s, ...protectedUrns.flatMap((u) => ["--target", u as string])]];
}

function main(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { stack: { type: "string" }, help: { type: "boolean", short: "h", default: false } }, strict: true });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const s = values.stack ? ["--stack", values.stack] : [];
  const pulumi = (args: string[], capture = false) =>
    execFileSync("pulumi", args, { stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit", encoding: "utf8" }) as unknown as string;
  pulumi(["config", "set", "picortex:protection", "false", ...s]);
  const urns = JSON.parse(pulumi(["stack", "output", "protectedUrns", "--json", ...s], true)) as unknown;
  for (const cmd of unprotectCommands(values.stack, urns)) pulumi(cmd);
  process.stderr.write("unprotect: protection lifted; now: pulumi destroy" + (values.stack ? ` --stack ${values.stack}` : "") + "\n");
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`unprotect: ${(err as Error).message.split("\n")[0]}\n`);
    process.exitCode = 1;
  }
}
