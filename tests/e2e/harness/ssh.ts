import { createServer, type Server, type AddressInfo, type Socket } from "node:net";
import { NodeSSH } from "node-ssh";
import { progress } from "./log.js";

/**
 * SSH to the booted host as the admin user, the way an operator (and the
 * RuntimeDeployment component) reaches it. Remote commands are argv arrays quoted here
 * for the remote POSIX shell, never strings pasted together from input.
 */

/** POSIX single-quote one argument: the only safe way to hand argv to sshd's shell. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

export interface RemoteResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class RemoteCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RemoteResult,
  ) {
    super(
      `remote command failed (exit ${result.code}): ${quoteArgv(argv)}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-2000)}`,
    );
    this.name = "RemoteCommandError";
  }
}

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string;
}

export class HostSession {
  private constructor(
    readonly ssh: NodeSSH,
    readonly target: SshTarget,
  ) {}

  /**
   * Connects, retrying with a delay until `deadlineMs` (ssh answers a while after boot;
   * a retry loop with no delay is the @pulumi/command pitfall this avoids).
   */
  static async connect(target: SshTarget, deadlineMs: number): Promise<HostSession> {
    const until = Date.now() + deadlineMs;
    let attempt = 0;
    let last: unknown;
    while (Date.now() < until) {
      attempt++;
      const ssh = new NodeSSH();
      try {
        await ssh.connect({
          host: target.host,
          port: target.port,
          username: target.username,
          privateKey: target.privateKey,
          readyTimeout: 10_000,
          // The guest makes fresh host keys on first boot; the test pins nothing, like a
          // first `ssh` to a new server (the RuntimeDeployment component pins when known).
          hostVerifier: () => true,
        } as Parameters<NodeSSH["connect"]>[0]);
        progress("ssh", `connected to ${target.username}@${target.host}:${target.port} after ${attempt} attempt(s)`);
        return new HostSession(ssh, target);
      } catch (err) {
        last = err;
        ssh.dispose();
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    throw new Error(
      `ssh to ${target.username}@${target.host}:${target.port} did not succeed within ${deadlineMs / 1000}s: ${String(last)}`,
    );
  }

  /** Runs argv on the host; resolves with the result whatever the exit code. */
  async exec(argv: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<RemoteResult> {
    const p = this.ssh.execCommand(quoteArgv(argv), opts.stdin === undefined ? {} : { stdin: opts.stdin });
    const timeoutMs = opts.timeoutMs ?? 300_000;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`remote command timed out after ${timeoutMs / 1000}s: ${quoteArgv(argv)}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Runs a fixed command text exactly as given. Only for the constant command lines the
   * RuntimeDeployment component sends (so the test runs byte-identical commands);
   * never for text built from input.
   */
  async execFixedText(commandText: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<RemoteResult> {
    const r = await this.ssh.execCommand(commandText, opts.stdin === undefined ? {} : { stdin: opts.stdin });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs argv and rejects with RemoteCommandError unless it exits 0. */
  async check(argv: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) throw new RemoteCommandError(argv, r);
    return r.stdout;
  }

  async putFile(local: string, remote: string): Promise<void> {
    await this.ssh.putFile(local, remote);
  }

  /**
   * A port forward like `ssh -L 127.0.0.1:<free>:<host>:<port>`: the runtime listens on
   * the guest's loopback only (its tailnet address does not exist offline), so the test
   * reaches the API, the portal and the sync server through this tunnel.
   */
  async forward(remoteHost: string, remotePort: number): Promise<{ port: number; close(): Promise<void> }> {
    const open = new Set<Socket>();
    const server: Server = createServer((sock) => {
      open.add(sock);
      sock.on("close", () => open.delete(sock));
      this.ssh.forwardOut("127.0.0.1", 0, remoteHost, remotePort).then(
        (chan) => {
          sock.pipe(chan).pipe(sock);
          chan.on("error", () => sock.destroy());
          sock.on("error", () => chan.destroy());
          sock.on("close", () => chan.destroy());
        },
        () => sock.destroy(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    return {
      port,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections would hold close() open until they time out.
          for (const sock of open) sock.destroy();
        }),
    };
  }

  dispose(): void {
    this.ssh.dispose();
  }
}
