import type { Command } from "commander";

// Placeholder until the portal module lands.
export function registerPortalCommands(_program: Command): void {}
