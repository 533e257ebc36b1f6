/**
 * Portal benchmark (not a test): the portal as shipped (default config, bundled like a
 * release, its own process) against a raw node-pty attached to the same tmux session in
 * the same run, all over loopback:
 *
 *   throughput     a burst of --mb MB through tmux, interleaved rounds      goal <= 1.1x raw's time
 *   echo latency   --keys keystrokes (>= 1000), interleaved blocks          goal p99 <= 1.5 ms or raw + 0.3 ms; p50 <= 0.6 ms
 *   memory         RSS before, between and after --bursts bursts, 1 and --clients clients
 *                                                                           goal: bursts 2..N add <= 10 MiB
 *   per client     runtime RSS + tmux client process per connected tab (picks maxClients)
 *   yes + ^C       ms until the next command's output (behaviour is tested; figure here)
 *
 * Usage: npx tsx bench/portal/run.ts [--mb 100] [--keys 1000] [--clients 20] [--bursts 6] [--rounds 3] [--wetty]
 * Results: printed beside goals and the raw baseline, and written to bench/results/portal-*.json.
 * wetty (opt-in) is installed on first use into bench/results/wetty (gitignored).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildPortalAssets } from "../../agent-runtime/portal/assets.js";
import { portalConfigSchema } from "../../agent-runtime/config/portal.js";
import { COLS, ROWS, connectPortal, connectRaw, connectWetty, type BenchClient } from "./clients.js";
import { Report, atMost, percentile } from "../lib/report.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const RESULTS = join(ROOT, "bench", "results");
const WETTY_DIR = join(RESULTS, "wetty");
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MB = arg("mb", 100);
const KEYS = arg("keys", 1000);
const CLIENTS = arg("clients", 20);
const BURSTS = arg("bursts", 6);
const WITH_WETTY = process.argv.includes("--wetty");
/** Throughput and latency run in interleaved rounds (raw, picortex, wetty, raw, …); medians are reported. */
const ROUNDS = arg("rounds", 3);

const say = (m: string) => process.stderr.write(`bench: ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.status < 500, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Resolves when `marker` shows up in a client's stream (searching a rolling tail). */
function markerWatch(client: BenchClient): { tail: () => string; bytes: () => number; until: (marker: string, timeoutMs?: number) => Promise<void> } {
  let tail = "";
  let bytes = 0;
  const waiters: Array<{ marker: string; done: () => void }> = [];
  client.onData((chunk) => {
    bytes += chunk.length;
    tail = (tail + chunk.toString("latin1")).slice(-512);
    for (const w of [...waiters]) if (tail.includes(w.marker)) (waiters.splice(waiters.indexOf(w), 1), w.done());
  });
  return {
    tail: () => tail,
    bytes: () => bytes,
    until: (marker, timeoutMs = 300_000) =>
      new Promise((res, rej) => {
        if (tail.includes(marker)) return res();
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${marker}`)), timeoutMs);
        waiters.push({ marker, done: () => (clearTimeout(t), res()) });
      }),
  };
}

let markerSeq = 1000;
/** A command whose echoed text differs from its output, so the marker means "finished". */
const markerCommand = (prefix: string) => {
  const n = markerSeq++;
  return { cmd: `echo ${prefix}-$((${n}+1))`, marker: `${prefix}-${n + 1}` };
};

async function throughput(client: BenchClient): Promise<{ mbPerSec: number; deliveredMiB: number }> {
  const w = markerWatch(client);
  await sleep(300);
  const { cmd, marker } = markerCommand("TPUT");
  const before = w.bytes();
  const t0 = performance.now();
  // base64 of 3/4·N bytes is N bytes of printable output (plus newlines).
  // ^U first: whatever a previous step left on the line must not turn this into a typo.
  client.write(`\x15head -c ${Math.round((MB * 1e6 * 3) / 4)} /dev/urandom | base64 -w ${COLS - 2}; ${cmd}\r`);
  await w.until(marker);
  const secs = (performance.now() - t0) / 1000;
  if (process.env.BENCH_DEBUG) say(`marker ${marker} after ${secs}s; tail=${JSON.stringify(w.tail())}`);
  return { mbPerSec: MB / secs, deliveredMiB: (w.bytes() - before) / 1048576 };
}

async function latency(client: BenchClient, keys: number): Promise<number[]> {
  let waiting: (() => void) | undefined;
  client.onData(() => waiting?.());
  client.write("\x15clear\r");
  await sleep(500);
  const samples: number[] = [];
  for (let i = 0; i < keys; i++) {
    const got = new Promise<void>((res) => (waiting = res));
    const t0 = performance.now();
    client.write(i % 60 === 59 ? "\x15" : "x"); // ^U now and then keeps the line short
    await got;
    samples.push(performance.now() - t0);
    waiting = undefined;
    await sleep(5); // let the rest of this echo's redraw drain
  }
  client.write("\x15");
  await sleep(200); // let tmux take the ^U before this client detaches
  return samples;
}

/**
 * `yes` flooding the terminal, then Ctrl-C: milliseconds until the shell has stopped it
 * and run the next command (its marker arrives). The tests check this by behaviour; the
 * figure lives here.
 */
async function ctrlC(client: BenchClient): Promise<number> {
  const w = markerWatch(client);
  client.write("\x15yes portal-bench-flood\r");
  await sleep(1000);
  const { cmd, marker } = markerCommand("CTRLC");
  const t0 = performance.now();
  client.write("\x03");
  client.write(`${cmd}\r`);
  await w.until(marker, 60_000);
  const ms = performance.now() - t0;
  if (process.env.BENCH_DEBUG) say(`^C marker ${marker} after ${ms} ms; tail=${JSON.stringify(w.tail())}`);
  return ms;
}

/** RSS of `pid` plus its tmux client children (each tab's `tmux attach-session` process). */
function tabsRssMiB(pid: number): { runtime: number; tmuxClients: number; count: number } {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "rss=,args=", "--ppid", String(pid)], { encoding: "utf8" });
  } catch {
    /* no children */
  }
  const rows = out.split("\n").filter((l) => /tmux/.test(l) && /attach-session/.test(l));
  return { runtime: rssMiB(pid), tmuxClients: rows.reduce((a, l) => a + Number(l.trim().split(/\s+/)[0]) / 1024, 0), count: rows.length };
}

/** Runs `bursts` bursts of `mb` MB to `clients` connected tabs; RSS of the runtime before, after each, and at its peak. */
async function burstSeries(pid: number, connect: () => Promise<BenchClient>, clients: number, bursts: number, mb: number): Promise<{ before: number; after: number[]; peak: number }> {
  const tabs: BenchClient[] = [];
  for (let i = 0; i < clients; i++) tabs.push(await connect());
  const watches = tabs.map(markerWatch);
  await sleep(500);
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  const after: number[] = [];
  for (let b = 0; b < bursts; b++) {
    const { cmd, marker } = markerCommand("BURST");
    tabs[0]!.write(`\x15head -c ${Math.round((mb * 1e6 * 3) / 4)} /dev/urandom | base64 -w ${COLS - 2}; ${cmd}\r`);
    await Promise.all(watches.map((w) => w.until(marker)));
    await sleep(300);
    after.push(rssMiB(pid));
    say(`  burst ${b + 1}/${bursts} to ${clients} client(s): RSS ${after[after.length - 1]!.toFixed(1)} MiB`);
  }
  clearInterval(sampler);
  for (const c of tabs) await c.close();
  return { before, after, peak };
}

/** The same bursts to a plain node process holding `clients` tmux clients in node-ptys (the raw baseline's memory). */
async function rawBurstSeries(rawHost: string, attach: string[], clients: number, bursts: number, mb: number, children: ChildProcess[]): Promise<{ before: number; after: number[]; peak: number }> {
  const cmds = Array.from({ length: bursts }, () => markerCommand("BURST"));
  const host = spawn(process.execPath, [rawHost, String(clients), cmds.map((c) => c.marker).join(","), ...attach], { stdio: ["pipe", "pipe", "inherit"] });
  children.push(host);
  let outText = "";
  const waiters: Array<{ word: string; done: () => void }> = [];
  host.stdout!.on("data", (d: Buffer) => {
    outText += d.toString();
    for (const w of [...waiters]) if (outText.includes(w.word)) (waiters.splice(waiters.indexOf(w), 1), w.done());
  });
  const waitFor = (word: string) =>
    new Promise<void>((res, rej) => {
      if (outText.includes(word)) return res();
      const t = setTimeout(() => rej(new Error(`raw host: timed out waiting for ${word}`)), 300_000);
      waiters.push({ word, done: () => (clearTimeout(t), res()) });
    });
  await waitFor("ready");
  await sleep(500);
  const before = rssMiB(host.pid!);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(host.pid!))), 50);
  const driver = await connectRaw(attach);
  const after: number[] = [];
  try {
    for (let b = 0; b < bursts; b++) {
      driver.write(`\x15head -c ${Math.round((mb * 1e6 * 3) / 4)} /dev/urandom | base64 -w ${COLS - 2}; ${cmds[b]!.cmd}\r`);
      await waitFor(`done ${b}\n`);
      await sleep(300);
      after.push(rssMiB(host.pid!));
      say(`  burst ${b + 1}/${bursts} to ${clients} raw client(s): RSS ${after[after.length - 1]!.toFixed(1)} MiB`);
    }
  } finally {
    clearInterval(sampler);
    await driver.close();
    host.stdin!.write("quit\n");
  }
  return { before, after, peak };
}

async function main(): Promise<void> {
  execFileSync("tmux", ["-V"]);
  const work = mkdtempSync(join(tmpdir(), "pcx-bench-"));
  const socket = join(work, "tmux.sock");
  const session = "bench";
  const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  const children: ChildProcess[] = [];
  try {
    tmux("new-session", "-d", "-s", session, "-x", String(COLS), "-y", String(ROWS), "--", "env", "PS1=b$ ", "sh");
    tmux("set-option", "-w", "-t", `=${session}:`, "window-size", "largest");
    const attach = ["-S", socket, "attach-session", "-t", `=${session}`];

    // --- picortex, bundled and run like a release (plain node, prebuilt page).
    say("bundling the runtime and the page");
    mkdirSync(RESULTS, { recursive: true });
    const bundle = join(RESULTS, "picortex-bench.mjs");
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [join(ROOT, "agent-runtime", "cli", "picortex.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      outfile: bundle,
      logLevel: "error",
    });
    const assetsDir = join(work, "portal-assets");
    await buildPortalAssets(assetsDir);
    const pcPort = await freePort();
    const dataDir = join(work, "data");
    const configFile = join(work, "runtime.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir,
        server: { hosts: ["127.0.0.1"], port: pcPort },
        turns: { enabled: false },
        brain: { enabled: false },
        // Shipped defaults for everything that shapes performance (maxClients, watermarks, heartbeat).
        portal: { session, tmuxSocket: socket, tmuxConfig: "/dev/null", command: ["env", "PS1=b$ ", "sh"], assetsDir },
      }),
    );
    const pc = spawn(process.execPath, [bundle, "portal", "start", "--foreground", "--config", configFile], { stdio: ["ignore", "ignore", "ignore"], cwd: ROOT });
    children.push(pc);
    const pcUrl = `http://127.0.0.1:${pcPort}`;
    await waitHttp(`${pcUrl}/healthz`);
    const token = readFileSync(join(dataDir, "portal-token"), "utf8").trim();
    const signIn = await fetch(`${pcUrl}/portal/api/session`, { method: "POST", headers: { "content-type": "application/json", origin: pcUrl }, body: JSON.stringify({ token }) });
    const cookie = /pcx_portal=[^;]+/.exec(signIn.headers.get("set-cookie") ?? "")![0];

    // --- wetty from npm.
    let wettyUrl: string | undefined;
    let wettyPid: number | undefined;
    if (WITH_WETTY) {
      const main = join(WETTY_DIR, "node_modules", "wetty", "build", "main.js");
      if (!existsSync(main)) {
        say("installing wetty@3.2.0 from npm into bench/results/wetty (first run only)");
        mkdirSync(WETTY_DIR, { recursive: true });
        writeFileSync(join(WETTY_DIR, "package.json"), '{"name":"wetty-bench","private":true}\n');
        execFileSync("npm", ["install", "--no-audit", "--no-fund", "wetty@3.2.0"], { cwd: WETTY_DIR, stdio: "inherit" });
      }
      // Same node-pty version as ours; reuse our native build when npm skipped its install script.
      const wettyPty = join(WETTY_DIR, "node_modules", "node-pty");
      if (existsSync(wettyPty) && !existsSync(join(wettyPty, "build", "Release", "pty.node"))) {
        cpSync(join(ROOT, "node_modules", "node-pty", "build"), join(wettyPty, "build"), { recursive: true });
      }
      const port = await freePort();
      const w = spawn(process.execPath, [main, "--port", String(port), "--host", "127.0.0.1", "--base", "/wetty", "--command", `tmux ${attach.join(" ")}`], {
        stdio: ["ignore", "ignore", "ignore"],
        cwd: WETTY_DIR,
      });
      children.push(w);
      wettyUrl = `http://127.0.0.1:${port}`;
      wettyPid = w.pid;
      await waitHttp(`${wettyUrl}/wetty`);
    }

    // --- the raw baseline's memory: a plain node process holding n tmux clients in node-ptys,
    // reading everything; prints "ready", then "done <k>" once every pty has seen markers[k].
    const rawHost = join(work, "raw-host.mjs");
    writeFileSync(
      rawHost,
      `import { createRequire } from "node:module";
const require = createRequire(${JSON.stringify(join(ROOT, "package.json"))});
const pty = require("node-pty");
const [n, markersCsv, ...args] = process.argv.slice(2);
const markers = markersCsv.split(",");
const reached = markers.map(() => 0);
for (let i = 0; i < Number(n); i++) {
  const p = pty.spawn("tmux", args, { cols: ${COLS}, rows: ${ROWS}, encoding: null, env: { ...process.env, TERM: "xterm-256color" } });
  let tail = "", next = 0;
  p.onData((d) => {
    tail = (tail + d.toString("latin1")).slice(-512);
    while (next < markers.length && tail.includes(markers[next])) { if (++reached[next] === Number(n)) process.stdout.write("done " + next + "\\n"); next++; }
  });
}
process.stdout.write("ready\\n");
process.stdin.on("data", () => process.exit(0));
`,
    );

    const report = new Report("portal", { mb: MB, keys: KEYS, clients: CLIENTS, bursts: BURSTS, rounds: ROUNDS, tmux: execFileSync("tmux", ["-V"], { encoding: "utf8" }).trim() });
    report.note(`picortex runs with the shipped defaults (maxClients ${portalConfigSchema.parse({}).maxClients}, watermarks ${portalConfigSchema.parse({}).highWatermarkBytes / 1024}/${portalConfigSchema.parse({}).lowWatermarkBytes / 1024} KiB); only the session, socket, command and assets are set`);
    const systems: Array<[string, () => Promise<BenchClient>]> = [
      ["raw", () => connectRaw(attach)],
      ["picortex", () => connectPortal(pcUrl, cookie)],
      ...(wettyUrl ? ([["wetty", () => connectWetty(wettyUrl!, WETTY_DIR)]] as Array<[string, () => Promise<BenchClient>]>) : []),
    ];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const secs: Record<string, number[]> = {};
    const echo: Record<string, number[]> = {};
    const ctrl: Record<string, number[]> = {};
    // Interleaved rounds, so background load on a shared machine hits every system alike.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, connect] of systems) {
        say(`round ${round}/${ROUNDS} ${name}: ${MB} MB through tmux, ${Math.ceil(KEYS / ROUNDS)} keystrokes, yes + ^C`);
        let c = await connect();
        const t = await throughput(c);
        (secs[name] ??= []).push(MB / t.mbPerSec);
        await c.close();
        c = await connect();
        (echo[name] ??= []).push(...(await latency(c, Math.ceil(KEYS / ROUNDS))));
        await c.close();
        c = await connect();
        (ctrl[name] ??= []).push(await ctrlC(c));
        await c.close();
        say(`  ${t.mbPerSec.toFixed(1)} MB/s, ${t.deliveredMiB.toFixed(2)} MiB delivered`);
      }
    }
    const raw = { secs: median(secs.raw!), p50: percentile(echo.raw!, 50), p99: percentile(echo.raw!, 99) };
    for (const [name] of systems) {
      if (name === "raw") continue;
      const mine = median(secs[name]!);
      report.add({
        name: `${name}: ${MB} MB burst through tmux, median of ${ROUNDS}`,
        value: mine,
        unit: "s",
        baseline: { name: "raw node-pty", value: raw.secs },
        ...(name === "picortex" ? { goal: atMost(mine / raw.secs, 1.1, "x raw") } : {}),
        note: `each round: ${secs[name]!.map((x) => x.toFixed(2)).join(", ")} s; raw ${secs.raw!.map((x) => x.toFixed(2)).join(", ")} s`,
      });
      const p99 = percentile(echo[name]!, 99);
      const p50 = percentile(echo[name]!, 50);
      report.add({
        name: `${name}: echo p99 (${echo[name]!.length} samples)`,
        value: p99,
        unit: "ms",
        baseline: { name: "raw node-pty", value: raw.p99 },
        ...(name === "picortex" ? { goal: { text: `<= 1.5 ms or <= raw + 0.3 (${(raw.p99 + 0.3).toFixed(2)}) ms`, met: p99 <= 1.5 || p99 <= raw.p99 + 0.3 } } : {}),
      });
      report.add({
        name: `${name}: echo p50 (${echo[name]!.length} samples)`,
        value: p50,
        unit: "ms",
        baseline: { name: "raw node-pty", value: raw.p50 },
        ...(name === "picortex" ? { goal: atMost(p50, 0.6, "ms") } : {}),
      });
      report.add({ name: `${name}: yes then ^C, until the next output`, value: median(ctrl[name]!), unit: "ms", baseline: { name: "raw node-pty", value: median(ctrl.raw!) } });
    }

    // --- memory per connected tab: runtime RSS and the tab's tmux client process.
    {
      await sleep(500);
      const idle = tabsRssMiB(pc.pid!);
      const tabs: BenchClient[] = [];
      for (let i = 0; i < CLIENTS; i++) tabs.push(await connectPortal(pcUrl, cookie));
      await sleep(1000);
      const busy = tabsRssMiB(pc.pid!);
      for (const t of tabs) await t.close();
      const runtimePer = (busy.runtime - idle.runtime) / CLIENTS;
      const tmuxPer = busy.count > 0 ? busy.tmuxClients / busy.count : 0;
      const perTab = runtimePer + tmuxPer;
      const cap = portalConfigSchema.parse({}).maxClients;
      report.add({ name: `memory per connected tab (runtime ${runtimePer.toFixed(2)} + tmux client ${tmuxPer.toFixed(2)} MiB)`, value: perTab, unit: "MiB" });
      report.add({ name: `memory of maxClients (${cap}) tabs at that rate`, value: perTab * cap, unit: "MiB", goal: atMost(perTab * cap, 256, "MiB") });
    }

    // --- RSS under repeated bursts, 1 and CLIENTS tabs: picortex, then the raw node-pty host
    // with as many tmux clients, the same bursts.
    for (const n of [1, CLIENTS]) {
      say(`picortex: ${BURSTS} bursts of ${MB} MB to ${n} client(s)`);
      const r = await burstSeries(pc.pid!, () => connectPortal(pcUrl, cookie), n, BURSTS, MB);
      say(`raw node-pty host: ${BURSTS} bursts of ${MB} MB to ${n} client(s)`);
      const raw = await rawBurstSeries(rawHost, attach, n, BURSTS, MB, children);
      const growth = r.after[r.after.length - 1]! - r.after[0]!;
      const rawGrowth = raw.after[raw.after.length - 1]! - raw.after[0]!;
      report.add({
        name: `runtime RSS growth over bursts 2..${BURSTS}, ${n} client(s)`,
        value: growth,
        unit: "MiB",
        baseline: { name: "raw node-pty host", value: rawGrowth },
        goal: atMost(growth, 10, "MiB"),
        note: `picortex RSS before ${r.before.toFixed(1)}, after each burst ${r.after.map((x) => x.toFixed(1)).join(", ")}, peak ${r.peak.toFixed(1)} MiB; raw node-pty host before ${raw.before.toFixed(1)}, after each burst ${raw.after.map((x) => x.toFixed(1)).join(", ")}, peak ${raw.peak.toFixed(1)} MiB`,
      });
      report.add({
        name: `runtime RSS after ${BURSTS} bursts, ${n} client(s)`,
        value: r.after[r.after.length - 1]!,
        unit: "MiB",
        baseline: { name: "raw node-pty host", value: raw.after[raw.after.length - 1]! },
      });
    }
    report.finish();
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
    try {
      tmux("kill-server");
    } catch {
      /* already gone */
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
