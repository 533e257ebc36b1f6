/**
 * Port squatting on a host (issue 13): a chat's processes (Linux users pc-<id>) or the
 * portal's agent used to be able to bind `[::1]:7420` (the runtime bound 127.0.0.1 and the
 * tailnet IPv4 only), or any address while the runtime restarted (it bound nothing then),
 * and collect the tokens clients send: MagicDNS answers AAAA for the host's name.
 *
 * Now picortex-runtime.socket (templates/render-units.ts) holds both ports on the
 * dual-stack wildcard in PID 1 and the runtime takes them by socket activation. This test
 * plays PID 1 with exactly what the rendered socket unit asks for (a small Python holder:
 * it binds, listens and never accepts, and starts/stops the real runtime with the sockets
 * as fds 3 and 4 and LISTEN_PID/LISTEN_FDS, the way systemd does), and attacks as an
 * unprivileged account it creates: every bind of either port, on every loopback and
 * wildcard address of both families, must fail while the runtime runs AND while it is
 * down (the restart window). The e2e host test repeats the attack under the real systemd.
 *
 * Needs root (useradd, runuser): run under `flock /tmp/picortex-system.lock` (.ci/run).
 * Before the fix the runtime ignored LISTEN_FDS, bound 127.0.0.1 itself and failed
 * (EADDRINUSE); with 127.0.0.1 only, `[::1]` and the wildcard were free to the attacker.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { connect, createServer } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderSocketUnit } from "../../templates/render-units.js";

if (process.getuid?.() !== 0) throw new Error("tests/runtime/port-squat.test.ts must run as root (it creates a user and runs as it): bash .ci/run, under flock /tmp/picortex-system.lock");
for (const tool of ["useradd", "userdel", "runuser", "python3"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is required by the port-squat test (apt-get install passwd util-linux python3)`);
}

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const work = mkdtempSync(join(tmpdir(), "pcx-squat-"));
chmodSync(work, 0o755);
const attacker = `pcsq${randomBytes(3).toString("hex")}`;

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "::", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/**
 * PID 1's part, from the rendered unit: each `ListenStream=<bare port>` with
 * `BindIPv6Only=both` is one AF_INET6 socket on `::` with IPV6_V6ONLY off, no SO_REUSEPORT,
 * passed in ListenStream= order from fd 3. Commands on stdin: start, stop, quit.
 */
const HOLDER = String.raw`
import os, socket, subprocess, sys
ports = [int(p) for p in sys.argv[1].split(",")]
argv = sys.argv[2:]
socks = []
for port in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    socks.append(s)
def child_fds():
    for i, s in enumerate(socks):
        os.dup2(s.fileno(), 3 + i)
        os.set_inheritable(3 + i, True)
child = None
print("held", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "start":
        env = dict(os.environ, LISTEN_FDS=str(len(socks)), LISTEN_FDNAMES=":".join(["picortex-runtime.socket"] * len(socks)))
        child = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + argv, env=env, preexec_fn=child_fds, pass_fds=tuple(range(3, 3 + len(socks))))
        print("started %d" % child.pid, flush=True)
    elif cmd == "stop":
        if child:
            child.terminate()
            child.wait()
            child = None
        print("stopped", flush=True)
    elif cmd == "quit":
        break
if child:
    child.kill()
`;

interface Holder {
  proc: ChildProcess;
  /** What the holder and the runtime wrote to stderr. */
  logs(): string;
  send(cmd: string, reply: RegExp): Promise<string>;
}

function startHolder(ports: number[], argv: string[]): Promise<Holder> {
  const script = join(work, "holder.py");
  writeFileSync(script, HOLDER);
  const proc = spawn("python3", [script, ports.join(","), ...argv], { cwd: REPO, env: { PATH: process.env.PATH, HOME: work }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let logs = "";
  proc.stdout!.on("data", (c) => (out += c));
  proc.stderr!.on("data", (c) => (logs += c));
  const waitFor = (re: RegExp) =>
    new Promise<string>((ok, fail) => {
      const check = () => {
        const m = re.exec(out);
        if (m) {
          out = out.slice(m.index + m[0].length);
          clearInterval(timer);
          ok(m[0]);
        } else if (proc.exitCode !== null) {
          clearInterval(timer);
          fail(new Error(`holder exited ${proc.exitCode}: ${logs}`));
        }
      };
      const timer = setInterval(check, 50);
    });
  return waitFor(/held\n/).then(() => ({
    proc,
    logs: () => logs,
    send: (cmd, reply) => {
      proc.stdin!.write(cmd + "\n");
      return waitFor(reply);
    },
  }));
}

/** Tries every bind of `port` as the attacker; returns what each attempt got ("bound" or the errno). */
function attack(port: number): Record<string, string> {
  const probe = `
const net = require("node:net");
const tries = [["::1", false], ["127.0.0.1", false], ["127.0.0.2", false], ["0.0.0.0", false], ["::", false], ["::", true], ["::ffff:127.0.0.1", false]];
(async () => {
  const out = {};
  for (const [host, ipv6Only] of tries) {
    out[host + (ipv6Only ? " v6only" : "")] = await new Promise((ok) => {
      const s = net.createServer();
      s.once("error", (e) => ok(e.code));
      s.listen({ port: ${port}, host, ipv6Only, exclusive: true }, () => s.close(() => ok("bound")));
    });
  }
  process.stdout.write(JSON.stringify(out));
})();`;
  const r = spawnSync("runuser", ["-u", attacker, "--", process.execPath, "-e", probe], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`attack probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

async function health(host: string, port: number): Promise<unknown> {
  const r = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/healthz`, { signal: AbortSignal.timeout(5_000) });
  return r.json();
}

describe("port squatting: the runtime's ports are never free to another account (issue 13)", () => {
  let apiPort = 0;
  let gatewayPort = 0;
  let holder: Holder;

  beforeAll(async () => {
    expect(spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", attacker]).status).toBe(0);
    apiPort = await freePort();
    do gatewayPort = await freePort();
    while (gatewayPort === apiPort);
    // What PID 1 binds is what the rendered unit says: two bare ports, API first, dual-stack.
    const unit = renderSocketUnit({ runtimePort: apiPort, gatewayPort }).content;
    const listen = [...unit.matchAll(/^ListenStream=(.*)$/gm)].map((m) => m[1]!);
    expect(listen).toEqual([String(apiPort), String(gatewayPort)]);
    expect(unit).toMatch(/^BindIPv6Only=both$/m);
    expect(unit).not.toMatch(/^ReusePort=yes$/m);
    const config = join(work, "config.json");
    writeFileSync(config, JSON.stringify({ portal: { enabled: false }, brain: { enabled: false }, turns: { warm: { enabled: false } } }));
    const argv = [process.execPath, "--import", "tsx", CLI, "serve", "--local", "--port", String(apiPort), "--data-dir", join(work, "data"), "--config", config];
    holder = await startHolder(listen.map(Number), argv);
  }, 60_000);

  afterAll(async () => {
    if (holder?.proc.exitCode === null) {
      holder.proc.stdin!.write("stop\nquit\n");
      await new Promise((r) => holder.proc.once("exit", r));
    }
    spawnSync("userdel", [attacker]);
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const expectAllRefused = (port: number) => {
    const got = attack(port);
    expect(Object.keys(got).length).toBe(7);
    for (const [address, result] of Object.entries(got)) expect(result, `${address}:${port} as ${attacker}`).toBe("EADDRINUSE");
  };

  it("the control: the attacker account can bind a free port on [::1] (so a refusal below is the port's)", () => {
    // A port nobody holds: bound, so the probe itself works.
    const got = attack(apiPort + (apiPort < 65000 ? 321 : -321));
    expect(Object.values(got).filter((r) => r === "bound").length).toBeGreaterThan(0);
  });

  it("while the runtime runs: it serves on the inherited sockets (IPv4 and IPv6 loopback), and no bind of either port succeeds", async () => {
    await holder.send("start", /started \d+\n/);
    // Connections wait in the held socket's backlog until the runtime accepts them; a
    // runtime that never takes the sockets (it binds its own and dies) leaves them waiting.
    let body: unknown;
    for (let i = 0; i < 20 && !body; i++) {
      try {
        body = await health("127.0.0.1", apiPort);
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(body, `the runtime did not serve on the inherited sockets:\n${holder.logs().slice(-3000)}`).toMatchObject({ ok: true });
    expect(await health("::1", apiPort)).toMatchObject({ ok: true });
    // The gateway answers its ping on the other inherited socket.
    const ping = await fetch(`http://[::1]:${gatewayPort}/gateway`, { signal: AbortSignal.timeout(5_000) });
    expect(ping.status).toBe(200);
    expectAllRefused(apiPort);
    expectAllRefused(gatewayPort);
  }, 120_000);

  it("closes a connection from outside loopback and the tailnet (this machine's own non-loopback address) without an answer", async () => {
    const outside = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && !a.internal && a.family === "IPv4" && !a.address.startsWith("100."));
    if (!outside) throw new Error("this test needs a non-loopback, non-tailnet IPv4 address on this machine (the one it reaches the registry with)");
    // From that address to itself: the source the runtime sees is not loopback.
    const got = await new Promise<string>((ok) => {
      const s = connect({ host: outside.address, port: apiPort, localAddress: outside.address }, () => s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
      let data = "";
      s.on("data", (c) => (data += c));
      s.on("error", (e) => ok(`error ${(e as NodeJS.ErrnoException).code}`));
      s.on("close", () => ok(data === "" ? "closed without an answer" : data.split("\r\n")[0]!));
    });
    expect(got).toMatch(/^(closed without an answer|error ECONNRESET)$/);
    // The control: the same request from loopback is answered.
    expect(await health("127.0.0.1", apiPort)).toMatchObject({ ok: true });
  }, 60_000);

  it("while the runtime is down (every restart): still no bind of either port succeeds", async () => {
    await holder.send("stop", /stopped\n/);
    await expect(health("127.0.0.1", apiPort)).rejects.toThrow();
    expectAllRefused(apiPort);
    expectAllRefused(gatewayPort);
  }, 120_000);
});
