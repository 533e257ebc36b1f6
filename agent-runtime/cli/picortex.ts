#!/usr/bin/env node
import { Command } from "commander";
import { registerServeCommand } from "./serve.js";
import { registerPortalCommands } from "../portal/cli.js";
import { registerBrainCommands } from "../brain/cli.js";
import { registerTurnsCommands } from "../turns/cli.js";
import { RUNTIME_VERSION } from "../server.js";

export function buildProgram(): Command {
  const program = new Command("picortex")
    .description("picortex agent runtime: a browser portal, per-chat Claude Code turns and a shared brain.")
    .version(RUNTIME_VERSION)
    .showHelpAfterError();
  registerServeCommand(program);
  registerPortalCommands(program);
  registerBrainCommands(program);
  registerTurnsCommands(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`picortex: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
