/**
 * Process look-ups for fault injection, by pid only (never by name): the pulumi CLI a
 * driver started, and the plugin processes of one lane (the doubles' command line carries
 * the lane's --picortex-lane=<root> marker; a real provider runs from the lane's PULUMI_HOME).
 */
import { readdirSync, readFileSync } from "node:fs";

function procs(): Array<{ pid: number; ppid: number; cmdline: string[] }> {
  const out: Array<{ pid: number; ppid: number; cmdline: string[] }> = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(d), ppid, cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Descendants of `root` whose argv[0] ends in /pulumi (the CLI the Automation API ran). */
export function pulumiCliUnder(root: number): number[] {
  const all = procs();
  const desc = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) if (desc.has(p.ppid) && !desc.has(p.pid)) (desc.add(p.pid), (grew = true));
  }
  return all.filter((p) => p.pid !== root && desc.has(p.pid) && /(^|\/)pulumi$/.test(p.cmdline[0] ?? "")).map((p) => p.pid);
}

/** Plugin processes started for this lane (still running, e.g. orphaned by a kill -9). */
export function lanePluginPids(laneRoot: string): number[] {
  const marker = `--picortex-lane=${laneRoot}`;
  // Real provider binaries (PICORTEX_ENGINE_PROVIDERS_DIR) carry no marker: they run from
  // the copy `pulumi plugin install` made in the lane's own PULUMI_HOME.
  const installed = `${laneRoot}/pulumi-home/plugins/`;
  return procs()
    .filter((p) => p.cmdline.includes(marker) || (p.cmdline[0] ?? "").startsWith(installed))
    .map((p) => p.pid);
}

export function killPids(pids: number[], signal: NodeJS.Signals = "SIGKILL"): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
