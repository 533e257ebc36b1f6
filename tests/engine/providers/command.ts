/**
 * Double of pulumi-resource-command (pulumi/pulumi-command, SDK @pulumi/command 1.2.1):
 * local.Command runs real processes here, remote.Command and remote.CopyToRemote run
 * over real SSH (node-ssh / ssh2).
 *
 * Contract rules and sources (provider/pkg/provider/{common,local,remote}):
 *  C1 Inputs common to both commands: create, update, delete, triggers. `triggers` is
 *     replaceOnChanges; every other input change is an update (infer's default diff).
 *     deleteBeforeReplace is never asked for: a replacement runs the new create before
 *     the old delete (pitfalls: "the delete undoes the create").
 *  C2 Create runs `create` (nothing when unset); the id is `<name><8 hex>`
 *     (resource.NewUniqueHex(name, 8, 0)). Preview runs nothing.
 *  C3 Update runs `update` when set, else `create` again (commandController.go Update).
 *  C4 Delete runs `delete` when set, else nothing.
 *  C5 addPreviousOutputInEnv (default true): update and delete see the previous
 *     PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR.
 *  C6 logging: stdout | stderr | stdoutAndStderr (default) | none selects which streams
 *     are sent to the engine log while the command runs; stdout/stderr are captured as
 *     outputs either way.
 *  C7 local: interpreter default ["/bin/sh", "-c"], `dir`, `environment` added to the
 *     provider's own environment, `stdin`.
 *  C8 remote: connection {host, port 22, user "root", password, privateKey,
 *     privateKeyPassword, hostKey, dialErrorLimit 10 (-1 = unlimited), perDialTimeout 15 s}.
 *     Dial retries have no delay between them (pulumi-command#1238). Without hostKey the
 *     host key is not checked; with it, a different key fails the dial. `connection` is
 *     a secret output (provider:"secret"); `environment` goes through SSH env requests.
 *  C9 Failure: a non-zero exit fails the step with "Process exited with status N:
 *     running <command>" followed by the captured output (so an inline script is
 *     printed in full: issue 21 item 9).
 *  C10 Secrets: outputs become secret when any input is (pulumi-go-provider infer's
 *     default, no per-field wiring in 1.x); `connection` always.
 *  C11 CopyToRemote: source (asset or archive), remotePath, triggers (replaceOnChanges).
 *     Create and update copy over SFTP; delete removes nothing on the host.
 *
 * Host names: when PICORTEX_ENGINE_HOSTS names a JSON file {"<name>": "<address>"},
 * remote connections resolve through it first (the emulators' tailnet names).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { posix } from "node:path";
import { NodeSSH } from "node-ssh";
import { ProviderError, SIG, ASSET_SIG, ARCHIVE_SIG, UNKNOWN, diffProps, type Ctx, type Props, type ProviderDef, type ResourceDef } from "./framework.js";

type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";

function commandFor(outs: Props, action: "create" | "update"): string | undefined {
  if (action === "update") return outs.update ?? outs.create;
  return outs.create;
}

function newId(name: string): string {
  return name + randomBytes(4).toString("hex");
}

/** Streams lines of a process's output to the engine log. */
function lineLogger(ctx: Ctx, enabled: boolean) {
  let buf = "";
  return {
    push(chunk: Buffer | string) {
      if (!enabled) return;
      buf += chunk.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) void ctx.log("info", l);
    },
    flush() {
      if (enabled && buf) void ctx.log("info", buf);
      buf = "";
    },
  };
}
const logs = (logging: unknown, stream: "stdout" | "stderr") => {
  const l = (logging as Logging | undefined) ?? "stdoutAndStderr";
  return l === "stdoutAndStderr" || l === stream;
};

function failure(code: number | null, signal: string | null, cmd: string, stdout: string, stderr: string): ProviderError {
  const what = code !== null ? `Process exited with status ${code}` : `Process killed by signal ${signal}`;
  return new ProviderError(`${what}: running ${JSON.stringify(cmd)}:\n${stdout}${stderr}`);
}

// ---- local -------------------------------------------------------------------------

async function runLocal(ctx: Ctx, props: Props, cmd: string, prev?: Props): Promise<{ stdout: string; stderr: string }> {
  const interpreter: string[] = (props.interpreter as string[] | undefined)?.length ? (props.interpreter as string[]) : ["/bin/sh", "-c"];
  const env: NodeJS.ProcessEnv = { ...process.env, ...((props.environment as Record<string, string>) ?? {}) };
  if (prev && props.addPreviousOutputInEnv !== false) {
    env.PULUMI_COMMAND_STDOUT = String(prev.stdout ?? "");
    env.PULUMI_COMMAND_STDERR = String(prev.stderr ?? "");
  }
  return new Promise((resolve, reject) => {
    const child = spawn(interpreter[0]!, [...interpreter.slice(1), cmd], { cwd: props.dir || undefined, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const lo = lineLogger(ctx, logs(props.logging, "stdout"));
    const le = lineLogger(ctx, logs(props.logging, "stderr"));
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      lo.push(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      le.push(d);
    });
    child.on("error", (err) => reject(new ProviderError(`running ${JSON.stringify(cmd)}: ${err.message}`)));
    child.on("close", (code, signal) => {
      lo.flush();
      le.flush();
      // The provider trims one trailing newline of each stream.
      const out = stdout.replace(/\r?\n$/, "");
      const errOut = stderr.replace(/\r?\n$/, "");
      if (code === 0) resolve({ stdout: out, stderr: errOut });
      else reject(failure(code, signal, cmd, stdout, stderr));
    });
    if (typeof props.stdin === "string" && props.stdin.length > 0) child.stdin.end(props.stdin);
    else child.stdin.end();
  });
}

const COMMON_KEYS = ["create", "update", "delete", "triggers", "environment", "stdin", "logging", "addPreviousOutputInEnv"];

const localCommand: ResourceDef = {
  check(_ctx, news) {
    return { inputs: { addPreviousOutputInEnv: true, ...news } };
  },
  diff(_ctx, _id, olds, news) {
    const keys = [...COMMON_KEYS, "dir", "interpreter", "assetPaths", "archivePaths"];
    return { ...diffProps(keys, ["triggers"], olds, news), deleteBeforeReplace: false };
  },
  // Recorded (recordings/replace.jsonl, pulumi-command 1.2.1): the detailed diff of a
  // changed local Command (`triggers`: UPDATE_REPLACE) carries no inputDiff flag.
  diffShape: { inputDiff: false },
  async create(ctx, inputs) {
    const id = newId(ctx.name);
    // Recorded (pulumi-command 1.2.1): a preview answers stdout/stderr unknown.
    if (ctx.preview) return { id, outs: { ...inputs, stdout: UNKNOWN, stderr: UNKNOWN } };
    if (inputs.create === undefined) return { id, outs: { ...inputs, stdout: "", stderr: "" } };
    const r = await runLocal(ctx, inputs, inputs.create);
    return { id, outs: { ...inputs, ...r } };
  },
  async read(_ctx, id, outs, inputs) {
    return { id, outs, inputs };
  },
  async update(ctx, _id, olds, news) {
    if (ctx.preview) return { ...news, stdout: olds.stdout, stderr: olds.stderr };
    const cmd = commandFor(news, "update");
    if (cmd === undefined) return { ...news, stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
    return { ...news, ...(await runLocal(ctx, news, cmd, olds)) };
  },
  async delete(ctx, _id, outs) {
    if (outs.delete === undefined) return;
    await runLocal(ctx, outs, outs.delete, outs);
  },
  // Recorded with the real provider (recordings/workspace-lifecycle.jsonl): a secret
  // environment value stays secret where it is; the other outputs are not made secret.
  secretsByPath: true,
  previewId: true,
};

// ---- remote ------------------------------------------------------------------------

function resolveHost(host: string): string {
  const file = process.env.PICORTEX_ENGINE_HOSTS;
  if (!file) return host;
  try {
    const map = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
    return map[host] ?? host;
  } catch {
    return host;
  }
}

async function dial(ctx: Ctx, c: Props): Promise<NodeSSH> {
  if (!c || typeof c.host !== "string") throw new ProviderError("connection.host is required");
  const limit = c.dialErrorLimit === undefined ? 10 : Number(c.dialErrorLimit);
  const perDial = (c.perDialTimeout === undefined ? 15 : Number(c.perDialTimeout)) * 1000;
  const address = resolveHost(c.host);
  let lastErr: unknown;
  for (let attempt = 1; limit < 0 || attempt <= limit; attempt++) {
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: address,
        port: c.port === undefined ? 22 : Number(c.port),
        username: c.user ?? "root",
        ...(c.password ? { password: c.password } : {}),
        ...(c.privateKey ? { privateKey: c.privateKey } : {}),
        ...(c.privateKeyPassword ? { passphrase: c.privateKeyPassword } : {}),
        readyTimeout: perDial,
        ...(c.hostKey
          ? {
              hostVerifier: (key: Buffer) => {
                const want = String(c.hostKey).trim().split(/\s+/)[1];
                return !!want && key.toString("base64") === want;
              },
            }
          : {}),
      });
      return ssh;
    } catch (err) {
      lastErr = err;
      ssh.dispose();
      // No delay between dial attempts, as the real provider (pulumi-command#1238).
      await ctx.log("debug", `dial ${c.host}:${c.port ?? 22} attempt ${attempt} failed: ${(err as Error).message}`);
    }
  }
  throw new ProviderError(`Failed to dial ${c.host}:${c.port ?? 22} after ${limit} attempts: ${(lastErr as Error)?.message ?? lastErr}`);
}

async function runRemote(ctx: Ctx, props: Props, cmd: string, prev?: Props): Promise<{ stdout: string; stderr: string }> {
  const ssh = await dial(ctx, props.connection as Props);
  try {
    const env: Record<string, string> = { ...((props.environment as Record<string, string>) ?? {}) };
    if (prev && props.addPreviousOutputInEnv !== false) {
      env.PULUMI_COMMAND_STDOUT = String(prev.stdout ?? "");
      env.PULUMI_COMMAND_STDERR = String(prev.stderr ?? "");
    }
    const lo = lineLogger(ctx, logs(props.logging, "stdout"));
    const le = lineLogger(ctx, logs(props.logging, "stderr"));
    const r = await ssh.execCommand(cmd, {
      stdin: typeof props.stdin === "string" && props.stdin.length > 0 ? props.stdin : undefined,
      execOptions: Object.keys(env).length ? { env } : undefined,
      noTrim: true,
      onStdout: (d) => lo.push(d),
      onStderr: (d) => le.push(d),
    });
    lo.flush();
    le.flush();
    if (r.code !== 0) throw failure(r.code, r.signal, cmd, r.stdout, r.stderr);
    return { stdout: r.stdout.replace(/\r?\n$/, ""), stderr: r.stderr.replace(/\r?\n$/, "") };
  } finally {
    ssh.dispose();
  }
}

const CONNECTION_DEFAULTS = { port: 22, user: "root", dialErrorLimit: 10, perDialTimeout: 15 };

const remoteCommand: ResourceDef = {
  check(_ctx, news) {
    const failures = news.connection === undefined ? [{ property: "connection", reason: "Missing required property 'connection'" }] : [];
    return { inputs: { addPreviousOutputInEnv: true, ...news, connection: { ...CONNECTION_DEFAULTS, ...(news.connection ?? {}) } }, failures };
  },
  diff(_ctx, _id, olds, news) {
    return { ...diffProps([...COMMON_KEYS, "connection"], ["triggers"], olds, news), deleteBeforeReplace: false };
  },
  async create(ctx, inputs) {
    const id = newId(ctx.name);
    if (ctx.preview || inputs.create === undefined) return { id, outs: { ...inputs, ...(ctx.preview ? {} : { stdout: "", stderr: "" }) } };
    return { id, outs: { ...inputs, ...(await runRemote(ctx, inputs, inputs.create)) } };
  },
  async read(_ctx, id, outs, inputs) {
    return { id, outs, inputs };
  },
  async update(ctx, _id, olds, news) {
    if (ctx.preview) return { ...news, stdout: olds.stdout, stderr: olds.stderr };
    const cmd = commandFor(news, "update");
    if (cmd === undefined) return { ...news, stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
    return { ...news, ...(await runRemote(ctx, news, cmd, olds)) };
  },
  async delete(ctx, _id, outs) {
    if (outs.delete === undefined) return;
    await runRemote(ctx, outs, outs.delete, outs);
  },
  secretOutputs: ["connection"],
  secretIfAnyInputSecret: true,
};

async function copy(ctx: Ctx, props: Props): Promise<void> {
  const src = props.source as Props;
  const ssh = await dial(ctx, props.connection as Props);
  try {
    const remotePath = String(props.remotePath);
    const sig = src?.[SIG];
    if (sig === ASSET_SIG && typeof src.path === "string") {
      await ssh.putFile(src.path, remotePath);
    } else if (sig === ARCHIVE_SIG && typeof src.path === "string" && statSync(src.path).isDirectory()) {
      await ssh.putDirectory(src.path, posix.join(remotePath, src.path.split("/").pop() ?? ""), { recursive: true });
    } else if (sig === ASSET_SIG && typeof src.text === "string") {
      await ssh.withSFTP(
        (sftp) =>
          new Promise<void>((resolve, reject) => {
            const w = sftp.createWriteStream(remotePath);
            w.on("close", () => resolve());
            w.on("error", reject);
            w.end(src.text);
          }),
      );
    } else {
      throw new ProviderError("CopyToRemote double: only FileAsset, StringAsset and FileArchive of a directory are supported");
    }
  } finally {
    ssh.dispose();
  }
}

const copyToRemote: ResourceDef = {
  check(_ctx, news) {
    return { inputs: { ...news, connection: { ...CONNECTION_DEFAULTS, ...(news.connection ?? {}) } } };
  },
  diff(_ctx, _id, olds, news) {
    return { ...diffProps(["connection", "source", "remotePath", "triggers"], ["triggers"], olds, news), deleteBeforeReplace: false };
  },
  async create(ctx, inputs) {
    const id = newId(ctx.name);
    if (!ctx.preview) await copy(ctx, inputs);
    return { id, outs: inputs };
  },
  async read(_ctx, id, outs, inputs) {
    return { id, outs, inputs };
  },
  async update(ctx, _id, _olds, news) {
    if (!ctx.preview) await copy(ctx, news);
    return news;
  },
  async delete() {
    // C11: nothing is removed from the host.
  },
  secretOutputs: ["connection"],
  secretIfAnyInputSecret: true,
};

export const commandProvider = (version: string): ProviderDef => ({
  name: "command",
  configureAnswer: { acceptSecrets: true, acceptResources: true, acceptOutputs: true, supportsAutonamingConfiguration: false },
  version,
  configure: () => ({}),
  resources: {
    "command:local:Command": localCommand,
    "command:remote:Command": remoteCommand,
    "command:remote:CopyToRemote": copyToRemote,
  },
});
