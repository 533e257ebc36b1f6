#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerServeCommand } from "./serve.js";
import { registerPortalCommands } from "../portal/cli.js";
import { registerBrainCommands } from "../brain/cli.js";
import { registerTurnsCommands } from "../turns/cli.js";
import { registerStateCommands } from "./state.js";
import { registerBridgesCommands } from "../bridges/cli.js";
import { RUNTIME_VERSION } from "../server.js";
import { EXIT_USAGE, fail } from "./shell.js";

/** Exit codes, the same for every command: 0 ok, 1 the operation failed, 2 usage or configuration (cli/shell.ts). */
export { EXIT_USAGE };

export function buildProgram(): Command {
  const program = new Command("picortex")
    .description("picortex agent runtime: a browser portal, per-chat Claude Code turns and a shared brain.")
    .version(RUNTIME_VERSION)
    .showHelpAfterError()
    // Set before the commands are added, so every subcommand inherits them: a usage error
    // reaches the catch below (exit 2, not commander's 1), and `--help` of a subcommand also
    // lists the options it inherits from its parent (e.g. `chat send --help` shows --json).
    .exitOverride()
    .configureHelp({ showGlobalOptions: true });
  registerServeCommand(program);
  registerPortalCommands(program);
  registerBrainCommands(program);
  registerTurnsCommands(program);
  registerBridgesCommands(program);
  registerStateCommands(program);
  return program;
}

/** Commander's own exits: help and version are success, everything else it raises is a usage error. */
export function exitCodeFor(err: CommanderError): number {
  if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) return 0;
  // Everything else commander raises (unknown command or option, missing argument, a bare
  // `picortex chat` that printed help instead of running) is a usage error.
  return EXIT_USAGE;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(exitCodeFor(err));
    fail(err, { prefix: "picortex" });
  });
