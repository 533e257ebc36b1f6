/**
 * Double of pulumi-resource-command (pulumi/pulumi-command v1.2.1, SDK @pulumi/command
 * 1.2.1, on pulumi-go-provider v1.3.0's `infer`): local.Command runs real processes here,
 * remote.Command and remote.CopyToRemote run over real SSH (node-ssh / ssh2).
 *
 * Contract rules and sources (pulumi-command provider/pkg/provider/{common,local,remote};
 * pulumi-go-provider infer/resource.go, infer/apply_secrets.go, provider.go). Each rule
 * marked "recorded" was compared with the real provider (tests/engine/recordings/):
 *  C1 Inputs common to both commands (common/inputs.go): create, update, delete,
 *     triggers. `triggers` is replaceOnChanges; every other input change is an update
 *     (infer's default diff, which has a CustomUpdate). deleteBeforeReplace is never
 *     asked for: a replacement runs the new create before the old delete (pitfalls: "the
 *     delete undoes the create").
 *  C2 Create runs `create` (nothing when unset); the id is `<name><8 hex>`
 *     (resource.NewUniqueHex(name, 8, 0)), answered in a preview too (recorded). Preview
 *     runs nothing.
 *  C3 Update runs `update` when set, else `create` again (commandController.go Update);
 *     neither: the old stdout/stderr are kept.
 *  C4 Delete runs `delete` when set, else nothing.
 *  C5 addPreviousOutputInEnv: NO default is filled by Check (no SetDefault for it in
 *     local/command.go or remote/command.go; recorded: absent from the checked inputs and
 *     the outputs unless the program sets it); unset means true when a command runs
 *     (`AddPreviousOutputInEnv == nil || *AddPreviousOutputInEnv`), and then
 *     PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR are set only when the previous value is
 *     not empty (local/commandOutputs.go run, remote/commandOutputs.go run).
 *  C6 logging: stdout | stderr | stdoutAndStderr | none selects which streams are sent to
 *     the engine log while the command runs (unset: both, logging.go ShouldLogStdout);
 *     stdout/stderr are captured as outputs either way. No default is filled in either.
 *  C7 local: interpreter ["/bin/sh", "-c"] when unset (not filled by Check), `dir`,
 *     `environment` added to the provider's own environment, `stdin`.
 *  C8 remote: connection {host, port, user, password, privateKey, privateKeyPassword,
 *     hostKey, dialErrorLimit (-1 = unlimited), perDialTimeout, proxy}; Check fills the
 *     defaults port 22, user "root", dialErrorLimit 10, perDialTimeout 15
 *     (connection.go / proxyConnection.go Annotate SetDefault). Dial retries have no delay
 *     between them (pulumi-command#1238). Without hostKey the host key is not checked;
 *     with it, a different key fails the dial. `environment` goes through SSH env requests.
 *  C9 Failure: a non-zero exit fails the step with "Process exited with status N:
 *     running <command>" followed by the captured output (so an inline script is
 *     printed in full: issue 21 item 9).
 *  C10 Secrets (infer, no WireDependencies in pulumi-command 1.2.1): Check keeps every
 *     secret where the program put it, a secret list element as an element (recorded:
 *     `triggers: [<secret>, "<server id>"]`, not the whole list), and applySecrets wraps
 *     the schema's `provider:"secret"` fields: `connection`, and inside it `password`,
 *     `privateKey`, `privateKeyPassword` (also the proxy's). Outputs: a property that
 *     mirrors its input keeps the input's wrappers (markSecret: "the output mirrors an
 *     input in name and value"); stdout and stderr depend on no input for secretness
 *     (ensureDefaultSecrets only links same-named fields), so they are never secret.
 *     (recorded: the double made every output secret as soon as one input was.)
 *  C11 Preview (infer markComputed): a Create answers stdout/stderr unknown (they mirror
 *     no input; isCreate); an Update answers them unknown when an input differs from the
 *     old state, otherwise the old values.
 *  C12 Diff (infer diff): old inputs against the new checked inputs over every property
 *     but `__*`/`version` (not a fixed list); one detailed entry per changed top-level
 *     property, without inputDiff (recorded); `diffs`/`replaces` come from ranging over a
 *     Go map (provider.go DiffResponse.rpc mapToSlice), so their order is random per call
 *     (tolerated as a set in recordings/known-differences.ts).
 *  C13 CopyToRemote (remote/copy.go, copyController.go): source (asset or archive),
 *     remotePath, triggers (replaceOnChanges), connection. Check runs DefaultCheck (the
 *     connection defaults) and answers the asset in the engine's full serialisation
 *     (plugin.MarshalAsset: hash, path, text and uri, empty ones as ""; recorded). Create
 *     copies over SFTP; its id is NewUniqueHex("", 8, 0) (8 hex, no name) and a preview
 *     answers no id. Update copies only when the source's hash or remotePath changed
 *     (`needCopy`). Delete removes nothing on the host.
 *
 * Host names: when PICORTEX_ENGINE_HOSTS names a JSON file {"<name>": "<address>"},
 * remote connections resolve through it first (the emulators' tailnet names).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { posix } from "node:path";
import { NodeSSH } from "node-ssh";
import { ProviderError, SIG, ASSET_SIG, ARCHIVE_SIG, UNKNOWN, containsUnknown, deepEqual, diffProps, type Ctx, type DiffAnswer, type PropPath, type Props, type ProviderDef, type ResourceDef } from "./framework.js";

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

/** C12: infer's default diff, old inputs against new ones over every property but `__*` and `version`. */
function inferDiff(oldInputs: Props, news: Props): DiffAnswer {
  const keys = [...new Set([...Object.keys(oldInputs ?? {}), ...Object.keys(news ?? {})])].filter((k) => !k.startsWith("__") && k !== "version").sort();
  return { ...diffProps(keys, ["triggers"], oldInputs ?? {}, news), deleteBeforeReplace: false };
}

/**
 * C11: a preview Update answers the new inputs with the old stdout/stderr, or with them
 * unknown when an input is unknown or differs from the old state (infer markComputed:
 * every output depends on every input for computedness).
 */
function previewUpdate(olds: Props, news: Props): Props {
  const inputKeys = new Set([...Object.keys(news), ...Object.keys(olds).filter((k) => k !== "stdout" && k !== "stderr")]);
  const changed = [...inputKeys].some((k) => containsUnknown(news[k]) || (k in olds && !deepEqual(news[k] ?? null, olds[k] ?? null)));
  return { ...news, stdout: changed ? UNKNOWN : olds.stdout, stderr: changed ? UNKNOWN : olds.stderr };
}

/** C5: the previous run's output, when addPreviousOutputInEnv is not false and it is not empty. */
function previousOutputEnv(props: Props, prev: Props | undefined): Record<string, string> {
  if (!prev || props.addPreviousOutputInEnv === false) return {};
  return {
    ...(typeof prev.stdout === "string" && prev.stdout !== "" ? { PULUMI_COMMAND_STDOUT: prev.stdout } : {}),
    ...(typeof prev.stderr === "string" && prev.stderr !== "" ? { PULUMI_COMMAND_STDERR: prev.stderr } : {}),
  };
}

function failure(code: number | null, signal: string | null, cmd: string, stdout: string, stderr: string): ProviderError {
  const what = code !== null ? `Process exited with status ${code}` : `Process killed by signal ${signal}`;
  return new ProviderError(`${what}: running ${JSON.stringify(cmd)}:\n${stdout}${stderr}`);
}

// ---- local -------------------------------------------------------------------------

async function runLocal(ctx: Ctx, props: Props, cmd: string, prev?: Props): Promise<{ stdout: string; stderr: string }> {
  const interpreter: string[] = (props.interpreter as string[] | undefined)?.length ? (props.interpreter as string[]) : ["/bin/sh", "-c"];
  const env: NodeJS.ProcessEnv = { ...process.env, ...((props.environment as Record<string, string>) ?? {}), ...previousOutputEnv(props, prev) };
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

const localCommand: ResourceDef = {
  // C5, C7: no default is filled (recorded: addPreviousOutputInEnv absent unless set).
  check(_ctx, news) {
    return { inputs: { ...news } };
  },
  diff(_ctx, _id, _olds, news, oldInputs) {
    return inferDiff(oldInputs, news);
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
    if (ctx.preview) return previewUpdate(olds, news);
    const cmd = commandFor(news, "update");
    if (cmd === undefined) return { ...news, stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
    return { ...news, ...(await runLocal(ctx, news, cmd, olds)) };
  },
  async delete(ctx, _id, outs) {
    if (outs.delete === undefined) return;
    await runLocal(ctx, outs, outs.delete, outs);
  },
  // C10, recorded with the real provider (recordings/workspace-lifecycle.jsonl): a secret
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
    const env: Record<string, string> = { ...((props.environment as Record<string, string>) ?? {}), ...previousOutputEnv(props, prev) };
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

/** C8: connection.go / proxyConnection.go Annotate SetDefault. */
const CONNECTION_DEFAULTS = { port: 22, user: "root", dialErrorLimit: 10, perDialTimeout: 15 };

/** C8: the connection (and its proxy) with the schema defaults filled; an unknown connection stays unknown. */
function withConnectionDefaults(c: unknown): unknown {
  if (!c || typeof c !== "object" || Array.isArray(c)) return c;
  const conn = c as Props;
  const proxy = conn.proxy && typeof conn.proxy === "object" ? { proxy: { ...CONNECTION_DEFAULTS, ...(conn.proxy as Props) } } : {};
  return { ...CONNECTION_DEFAULTS, ...conn, ...proxy };
}

/** C10: the `provider:"secret"` fields of connection.go (Connection, connectionBase, ProxyConnection). */
const CONNECTION_SECRETS: PropPath[] = [
  ["connection"],
  ...["password", "privateKey", "privateKeyPassword"].flatMap((k): PropPath[] => [
    ["connection", k],
    ["connection", "proxy", k],
  ]),
];

const remoteCommand: ResourceDef = {
  check(_ctx, news) {
    const failures = news.connection === undefined ? [{ property: "connection", reason: "Missing required property 'connection'" }] : [];
    return { inputs: { ...news, ...(news.connection === undefined ? {} : { connection: withConnectionDefaults(news.connection) }) }, failures };
  },
  diff(_ctx, _id, _olds, news, oldInputs) {
    return inferDiff(oldInputs, news);
  },
  // Recorded (recordings/deploy.jsonl): no inputDiff flag, as the local Command.
  diffShape: { inputDiff: false },
  async create(ctx, inputs) {
    const id = newId(ctx.name);
    // C2, C11: a preview answers the id and stdout/stderr unknown.
    if (ctx.preview) return { id, outs: { ...inputs, stdout: UNKNOWN, stderr: UNKNOWN } };
    if (inputs.create === undefined) return { id, outs: { ...inputs, stdout: "", stderr: "" } };
    return { id, outs: { ...inputs, ...(await runRemote(ctx, inputs, inputs.create)) } };
  },
  async read(_ctx, id, outs, inputs) {
    return { id, outs, inputs };
  },
  async update(ctx, _id, olds, news) {
    if (ctx.preview) return previewUpdate(olds, news);
    const cmd = commandFor(news, "update");
    if (cmd === undefined) return { ...news, stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
    return { ...news, ...(await runRemote(ctx, news, cmd, olds)) };
  },
  async delete(ctx, _id, outs) {
    if (outs.delete === undefined) return;
    await runRemote(ctx, outs, outs.delete, outs);
  },
  secretsByPath: true,
  schemaSecrets: CONNECTION_SECRETS,
  previewId: true,
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

/**
 * C13: an asset as the engine serialises it (plugin.MarshalAsset: hash, path, text, uri,
 * empty ones as ""). Recorded for a FileAsset; archives are passed through as sent (the
 * stacks upload no archive, so their shape is not measured).
 */
function serialisedSource(src: unknown): unknown {
  if (!src || typeof src !== "object" || (src as Props)[SIG] !== ASSET_SIG) return src;
  const a = src as Props;
  return { [SIG]: ASSET_SIG, hash: a.hash ?? "", path: a.path ?? "", text: a.text ?? "", uri: a.uri ?? "" };
}

/**
 * C13: the outputs answer the asset serialised in full even though the engine sends it to
 * Create/Update without its empty fields (recorded: hash and path in the request, hash,
 * path, text "" and uri "" in the answer).
 */
function withSerialisedSource(props: Props): Props {
  return props.source === undefined ? props : { ...props, source: serialisedSource(props.source) };
}

const copyToRemote: ResourceDef = {
  check(_ctx, news) {
    return {
      inputs: {
        ...news,
        ...(news.connection === undefined ? {} : { connection: withConnectionDefaults(news.connection) }),
        ...(news.source === undefined ? {} : { source: serialisedSource(news.source) }),
      },
    };
  },
  diff(_ctx, _id, _olds, news, oldInputs) {
    return inferDiff(oldInputs, news);
  },
  // Recorded (recordings/deploy.jsonl): no inputDiff flag.
  diffShape: { inputDiff: false },
  async create(ctx, inputs) {
    // C13: NewUniqueHex("", 8, 0), and no id in a preview.
    const id = randomBytes(4).toString("hex");
    if (!ctx.preview) await copy(ctx, inputs);
    return { id, outs: withSerialisedSource(inputs) };
  },
  async read(_ctx, id, outs, inputs) {
    return { id, outs: withSerialisedSource(outs), inputs };
  },
  async update(ctx, _id, olds, news) {
    // C13 (copyController.go Update): copies only when the source's hash or remotePath changed.
    const needCopy = (news.source as Props | undefined)?.hash !== (olds.source as Props | undefined)?.hash || news.remotePath !== olds.remotePath;
    if (!ctx.preview && needCopy) await copy(ctx, news);
    return withSerialisedSource(news);
  },
  async delete() {
    // C13: nothing is removed from the host.
  },
  secretsByPath: true,
  schemaSecrets: CONNECTION_SECRETS,
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
