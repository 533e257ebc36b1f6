import type { Command } from "commander";

// Placeholder until the turns module lands.
export function registerTurnsCommands(_program: Command): void {}
