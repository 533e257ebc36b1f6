import type { ChildProcess } from "node:child_process";

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone. EPERM: a non-root runtime cannot signal sudo or the chat
    // user's processes; `reapAsOwner` covers that case.
  }
}

/**
 * Stops a turn's whole process group: SIGTERM, then after `graceMs` SIGKILL, plus
 * `reapAsOwner` (in host mode `pkill -KILL -U pc-<id>` run as the chat user, which a
 * non-root runtime is allowed to do). Returns false when something could not be reaped.
 */
export async function terminateGroup(child: ChildProcess, graceMs: number, reapAsOwner?: () => Promise<void>): Promise<boolean> {
  const pid = child.pid;
  if (pid === undefined) return true;
  signalGroup(pid, "SIGTERM");
  if (await exited(child, graceMs)) {
    signalGroup(pid, "SIGKILL"); // stragglers the CLI started (tools, shells)
    if (reapAsOwner) await reapAsOwner().catch(() => {});
    return true;
  }
  signalGroup(pid, "SIGKILL");
  if (reapAsOwner) await reapAsOwner().catch(() => {});
  return exited(child, 5000);
}
