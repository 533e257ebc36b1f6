/**
 * Run AS THE RUNTIME USER by tests/portal/agent-account.test.ts: does exactly what the
 * portal does for a browser tab (ensureSession, then a tmux client in a pty, both through
 * tmuxInvocation with portal.runAs), then types one line into the session like a user
 * would and prints what the terminal showed.
 */
import { attachArgs, ensureSession, tmuxEnv, tmuxInvocation, type TmuxTarget } from "../../../agent-runtime/portal/tmux.js";
import { spawnTerminal } from "../../../agent-runtime/portal/pty.js";

const cfg = JSON.parse(process.argv[2]!) as { socket: string; runAs: string; session: string; cwd: string; command: string[]; typed: string; doneFile?: string };
const t: TmuxTarget = { session: cfg.session, command: cfg.command, socket: cfg.socket, runAs: cfg.runAs || undefined, cwd: cfg.cwd, windowSize: "largest" };
await ensureSession(t, { cols: 160, rows: 40 });
const inv = tmuxInvocation(t, attachArgs(t, { readOnly: false, historyLines: 0 }));
const pty = spawnTerminal({ file: inv.file, args: inv.args, cols: 160, rows: 40, cwd: t.runAs ? "/" : cfg.cwd, env: tmuxEnv() });
let screen = "";
pty.onData((d) => (screen += d.toString("utf8")));
const exited = new Promise<number>((res) => pty.onExit((e) => res(e.exitCode)));
await new Promise((r) => setTimeout(r, 1500));
pty.write(cfg.typed + "\r");
const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-1), 30_000))]);
if (code === -1) pty.kill();
process.stdout.write(JSON.stringify({ clientExit: code, screenBytes: screen.length }) + "\n");
process.exit(0);
