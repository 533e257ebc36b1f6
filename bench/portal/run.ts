/**
 * Portal benchmark (not a test): output throughput, keystroke echo latency and server
 * RSS with 20 clients during a burst, for three ways of reaching the SAME tmux session
 * on this machine, all over loopback, measured in one run:
 *
 *   raw       a tmux client in a node-pty, no web layer (the limit)
 *   picortex  the portal (bundled like a release, separate process), WebSocket client that acks
 *   wetty     wetty from npm (separate process), socket.io client that commits
 *
 * Usage: npx tsx bench/portal/run.ts [--mb 100] [--keys 200] [--clients 20] [--no-wetty]
 * wetty is installed on first use into bench/results/wetty (gitignored).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildPortalAssets } from "../../agent-runtime/portal/assets.js";
import { COLS, ROWS, connectPortal, connectRaw, connectWetty, type BenchClient } from "./clients.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const RESULTS = join(ROOT, "bench", "results");
const WETTY_DIR = join(RESULTS, "wetty");
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MB = arg("mb", 100);
const KEYS = arg("keys", 200);
const CLIENTS = arg("clients", 20);
const WITH_WETTY = !process.argv.includes("--no-wetty");
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

interface Figures {
  ctrlC: number;
  mbPerSec: number;
  deliveredMiB: number;
  p50: number;
  p99: number;
  rssIdle: number;
  rssPeak: number;
}

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

async function latency(client: BenchClient): Promise<{ p50: number; p99: number }> {
  let waiting: (() => void) | undefined;
  client.onData(() => waiting?.());
  client.write("\x15clear\r");
  await sleep(500);
  const samples: number[] = [];
  for (let i = 0; i < KEYS; i++) {
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
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { p50: q(0.5), p99: q(0.99) };
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

/** Peak RSS of `pid` while `clients` all receive a burst to its end marker. */
async function burstRss(pid: number, connect: () => Promise<BenchClient>, burstMb = 20): Promise<{ rssIdle: number; rssPeak: number }> {
  const clients: BenchClient[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await connect());
  const watches = clients.map(markerWatch);
  await sleep(500);
  const rssIdle = rssMiB(pid);
  let rssPeak = rssIdle;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 20);
  const { cmd, marker } = markerCommand("BURST");
  clients[0]!.write(`\x15head -c ${Math.round((burstMb * 1e6 * 3) / 4)} /dev/urandom | base64 -w ${COLS - 2}; ${cmd}\r`);
  await Promise.all(watches.map((w) => w.until(marker)));
  clearInterval(sampler);
  for (const c of clients) await c.close();
  return { rssIdle, rssPeak };
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
        portal: { session, tmuxSocket: socket, tmuxConfig: "/dev/null", command: ["env", "PS1=b$ ", "sh"], assetsDir, maxClients: 64 },
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

    // --- the raw limit's RSS: a plain node process holding CLIENTS tmux clients in node-ptys.
    const rawHost = join(work, "raw-host.mjs");
    writeFileSync(
      rawHost,
      `import { createRequire } from "node:module";
const require = createRequire(${JSON.stringify(join(ROOT, "package.json"))});
const pty = require("node-pty");
const [n, marker, ...args] = process.argv.slice(2);
let seen = 0;
for (let i = 0; i < Number(n); i++) {
  const p = pty.spawn("tmux", args, { cols: ${COLS}, rows: ${ROWS}, encoding: null, env: { ...process.env, TERM: "xterm-256color" } });
  let tail = "", done = false;
  p.onData((d) => { tail = (tail + d.toString("latin1")).slice(-512); if (!done && tail.includes(marker)) { done = true; if (++seen === Number(n)) process.stdout.write("done\\n"); } });
}
process.stdout.write("ready\\n");
process.stdin.on("data", () => process.exit(0));
`,
    );

    const results: Record<string, Figures> = {};
    const systems: Array<[string, () => Promise<BenchClient>, number | undefined]> = [
      ["raw", () => connectRaw(attach), undefined],
      ["picortex", () => connectPortal(pcUrl, cookie), pc.pid],
      ...(wettyUrl ? ([["wetty", () => connectWetty(wettyUrl!, WETTY_DIR), wettyPid]] as Array<[string, () => Promise<BenchClient>, number | undefined]>) : []),
    ];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const tput: Record<string, Array<{ mbPerSec: number; deliveredMiB: number }>> = {};
    const lat: Record<string, Array<{ p50: number; p99: number }>> = {};
    const ctrl: Record<string, number[]> = {};
    // Interleaved rounds, so background load on a shared machine hits every system alike.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, connect] of systems) {
        say(`round ${round}/${ROUNDS} ${name}: throughput (${MB} MB through tmux), echo latency (${KEYS} keys)`);
        let c = await connect();
        const t = await throughput(c);
        (tput[name] ??= []).push(t);
        await c.close();
        c = await connect();
        const l = await latency(c);
        (lat[name] ??= []).push(l);
        await c.close();
        c = await connect();
        const cc = await ctrlC(c);
        (ctrl[name] ??= []).push(cc);
        await c.close();
        say(`  ${t.mbPerSec.toFixed(1)} MB/s, ${t.deliveredMiB.toFixed(2)} MiB delivered, echo p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, ^C→prompt ${cc.toFixed(0)} ms`);
      }
    }
    for (const [name, connect, pid] of systems) {
      const t = { mbPerSec: median(tput[name]!.map((x) => x.mbPerSec)), deliveredMiB: median(tput[name]!.map((x) => x.deliveredMiB)) };
      const l = { p50: median(lat[name]!.map((x) => x.p50)), p99: median(lat[name]!.map((x) => x.p99)), ctrlC: median(ctrl[name]!) };
      say(`${name}: RSS with ${CLIENTS} clients during a 20 MB burst`);
      let r: { rssIdle: number; rssPeak: number };
      if (pid !== undefined) r = await burstRss(pid, connect);
      else {
        const { cmd, marker } = markerCommand("BURST");
        const host = spawn(process.execPath, [rawHost, String(CLIENTS), marker, ...attach], { stdio: ["pipe", "pipe", "inherit"] });
        children.push(host);
        let outText = "";
        const waitFor = (word: string) =>
          new Promise<void>((res) => {
            const check = () => outText.includes(word) && res();
            host.stdout!.on("data", (d: Buffer) => ((outText += d.toString()), check()));
            check();
          });
        await waitFor("ready");
        await sleep(500);
        const rssIdle = rssMiB(host.pid!);
        let rssPeak = rssIdle;
        const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(host.pid!))), 20);
        const driver = await connectRaw(attach);
        driver.write(`\x15head -c ${Math.round((20e6 * 3) / 4)} /dev/urandom | base64 -w ${COLS - 2}; ${cmd}\r`);
        await waitFor("done");
        clearInterval(sampler);
        await driver.close();
        host.stdin!.write("quit\n");
        r = { rssIdle, rssPeak };
      }
      results[name] = { ...t, ...l, ...r };
    }

    // --- report
    const f = (n: number, d = 1) => n.toFixed(d);
    const rows = Object.entries(results).map(([name, r]) => [
      name,
      f(r.mbPerSec),
      f(r.deliveredMiB, 2),
      f(r.p50, 2),
      f(r.p99, 2),
      f(r.ctrlC, 0),
      f(r.rssIdle),
      f(r.rssPeak),
    ]);
    const head = ["system", "MB/s (source)", "MiB delivered", "echo p50 ms", "echo p99 ms", "yes+^C→prompt ms", `RSS idle MiB`, `RSS peak MiB (${CLIENTS} clients, burst)`];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    const outLines = [
      `portal bench: ${MB} MB through tmux ${COLS}x${ROWS}, ${KEYS} keystrokes, medians of ${ROUNDS} interleaved rounds; ${CLIENTS} clients for RSS; node ${process.version}, ${new Date().toISOString()}`,
      line(head),
      ...rows.map(line),
      "",
    ];
    const pcR = results.picortex!;
    for (const base of ["raw", "wetty"]) {
      const b = results[base];
      if (!b) continue;
      outLines.push(
        `picortex vs ${base}: throughput ×${f(pcR.mbPerSec / b.mbPerSec, 2)}, echo p50 ×${f(pcR.p50 / b.p50, 2)}, p99 ×${f(pcR.p99 / b.p99, 2)}, ^C ×${f(pcR.ctrlC / b.ctrlC, 2)}, peak RSS ×${f(pcR.rssPeak / b.rssPeak, 2)}  (throughput >1 is better; latency and RSS <1 are better)`,
      );
    }
    const report = outLines.join("\n");
    process.stdout.write(report + "\n");
    writeFileSync(join(RESULTS, `portal-${new Date().toISOString().replace(/[:.]/g, "-")}.txt`), report + "\n");
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
