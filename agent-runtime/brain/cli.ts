import type { Command } from "commander";

// Placeholder until the brain module lands.
export function registerBrainCommands(_program: Command): void {}
