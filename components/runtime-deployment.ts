/**
 * RuntimeDeployment: ships a release built by scripts/bundle.ts to a WorkspaceHost and
 * makes it the running runtime, through the host's one privileged entry point
 * (/usr/local/sbin/picortex-release, see templates/host/picortex-release.sh).
 *
 * Graph (each step depends on the one before):
 *   reachable   local poll of the SSH port: retries WITH a delay (the provider's own dial
 *               retries have none, pulumi-command#1238) and a bounded total wait (#199)
 *   cloudInit   `cloud-init status --wait`: ssh answers before cloud-init has finished
 *   settings    uploads runtime-settings.json (secret, over stdin) and, on a config-only
 *               change, re-activates the running release so the new settings apply
 *   upload      remote.CopyToRemote of <hash>.tar.gz to ~<admin>/incoming/
 *   release     `picortex-release install <hash> && … activate <hash>`; delete: nothing by
 *               default (a destroy never needs the host), `uninstall <hash>` with uninstallOnDelete
 *
 * Replacement: `upload` and `release` are replaced when the bundle hash changes, and
 * `settings` when the config hash changes. When `redeployOn` (the server id) changes,
 * i.e. on a new machine, every step runs again: the others are replaced (they have no
 * delete command), `release` is updated in place (see createOnMachine). The config hash is deliberately NOT a trigger
 * of `release`: Pulumi replaces create-before-delete, so the old resource's delete
 * (`uninstall <same hash>`) would remove the release the new one had just activated.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readProgram } from "./programs/read-program.js";
import { dirname, join } from "node:path";
import { CURRENT_RELEASE_LINK, DEFAULT_ADMIN_USER, RELEASE_HASH_PATTERN, RELEASE_HELPER_PATH, linuxNameProblem } from "../agent-runtime/host/contract.js";

export interface RuntimeConnectionArgs {
  /**
   * Where to reach the host's sshd: its tailnet name by default (MagicDNS, e.g.
   * `picortex`), or its public IP as the bootstrap alternative when SSH is allowlisted
   * in the firewall (see docs/deploy.md).
   */
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  /** The deploy account (no general sudo; may run picortex-release). Default `pcadmin`. */
  adminUser?: string;
  /** The admin's private key (OpenSSH format). Wrapped in pulumi.secret here. */
  privateKey: pulumi.Input<string>;
  /** Its passphrase, when it has one (secret). */
  privateKeyPassword?: pulumi.Input<string>;
  /** The host's public key line (`ssh-ed25519 AAAA…`). Without it the host key is NOT checked. */
  hostKey?: pulumi.Input<string>;
}

export interface RuntimeSettingsArgs {
  /** Written to /etc/picortex/runtime.json (the runtime's `--config`). */
  runtimeConfig?: pulumi.Input<Record<string, unknown>>;
  /** Written to /etc/picortex/credentials/anthropic-api-key, read via LoadCredential=. */
  anthropicApiKey?: pulumi.Input<string>;
  /** Written to /var/lib/picortex/api-token: the runtime API bearer token chat stacks use. */
  apiToken?: pulumi.Input<string>;
  /**
   * The runtime's `bridges` section, set into /etc/picortex/runtime.json ({} turns every
   * bridge off). With it, the bridge secrets below are written, and an absent one removed.
   */
  bridges?: pulumi.Input<Record<string, unknown>>;
  /** Written to /etc/picortex/credentials/bridges/telegram-bot-token (root 0600, the runtime's credential). */
  telegramBotToken?: pulumi.Input<string>;
  /** Written to /etc/picortex/credentials/bridges/webhook-secret (root 0600). */
  webhookSecret?: pulumi.Input<string>;
}

export interface RuntimeDeploymentArgs {
  connection: RuntimeConnectionArgs;
  /** The release: `readReleaseManifest("dist/release/<hash>.json")` or `{ hash, tarballPath }`. */
  release: ReleaseRef;
  settings?: RuntimeSettingsArgs;
  /** SSH readiness poll: attempts × delay bounds the wait (default 60 × 5 s). */
  readiness?: { attempts?: number; delaySeconds?: number };
  /**
   * Values whose change means "a different machine": pass the server id. A replaced
   * server keeps its tailnet name, so without this nothing would redeploy to it.
   */
  redeployOn?: pulumi.Input<string | number>[];
  /**
   * Run `picortex-release uninstall <hash>` when the release resource is deleted (default
   * false). Off for the workspace stack: destroying the server removes everything anyway,
   * and a destroy must never need the host (it is often unreachable, the usual reason to
   * tear down; issue 21 item 3). A replacement's delete would only touch the rollback
   * target, which uninstall keeps.
   */
  uninstallOnDelete?: boolean;
}

export interface ReleaseRef {
  hash: string;
  tarballPath: string;
}

export class RuntimeDeployment extends pulumi.ComponentResource {
  /** The active release's content hash. */
  readonly releaseHash: pulumi.Output<string>;
  /** Hash of the uploaded runtime settings (secret when they are), "" when none. */
  readonly configHash: pulumi.Output<string>;
  /** picortex-release's JSON result of the last activation. */
  readonly activation: pulumi.Output<string>;

  constructor(name: string, args: RuntimeDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:deploy:RuntimeDeployment", name, {}, opts);
    const hash = assertReleaseHash(args.release.hash);
    const admin = assertLinuxName(args.connection.adminUser ?? DEFAULT_ADMIN_USER);
    const attempts = args.readiness?.attempts ?? 60;
    const delaySeconds = args.readiness?.delaySeconds ?? 5;
    if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`readiness.attempts must be a positive integer, got ${attempts}`);
    if (!(delaySeconds > 0)) throw new Error(`readiness.delaySeconds must be positive, got ${delaySeconds}`);
    if (args.connection.hostKey === undefined) {
      pulumi.log.warn(
        `${name}: connection.hostKey is not set, so the host's SSH key is not verified. Pin it once known (ssh-keyscan over the tailnet, or the key from the WorkspaceHost outputs).`,
        this,
      );
    }
    const connection = connectionArgs(args.connection, admin);
    const machine = args.redeployOn ?? [];

    const reachable = new command.local.Command(
      `${name}-reachable`,
      {
        interpreter: ["node", "-e"],
        create: READINESS_SCRIPT,
        environment: {
          PICORTEX_SSH_HOST: args.connection.host,
          PICORTEX_SSH_PORT: pulumi.output(args.connection.port ?? 22).apply(String),
          PICORTEX_READY_ATTEMPTS: String(attempts),
          PICORTEX_READY_DELAY_MS: String(Math.round(delaySeconds * 1000)),
        },
        triggers: [hash, ...machine],
        logging: "stderr",
      },
      // Children do not inherit the component's dependsOn: forward it to the first step,
      // so nothing runs before the host exists (the host name is often a plain string,
      // with no output to carry the dependency). Every later step depends on this one,
      // so on destroy `uninstall` runs before the host is deleted.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    const cloudInit = new command.remote.Command(
      `${name}-cloud-init`,
      { connection, create: CLOUD_INIT_WAIT_COMMAND, triggers: [hash, ...machine], logging: "stdoutAndStderr" },
      { parent: this, dependsOn: [reachable] },
    );

    const settingsDoc = args.settings ? pulumi.secret(pulumi.output(args.settings).apply((s) => settingsDocument(s))) : undefined;
    this.configHash = settingsDoc ? settingsDoc.apply(configHash) : pulumi.output("");
    const settings = settingsDoc
      ? new command.remote.Command(
          `${name}-settings`,
          {
            connection,
            create: SETTINGS_UPLOAD_COMMAND,
            stdin: settingsDoc,
            triggers: [this.configHash, ...machine],
            // The values travel on stdin only; nothing is echoed, and nothing is logged.
            logging: "none",
          },
          { parent: this, dependsOn: [cloudInit], additionalSecretOutputs: ["stdin", "stdout", "stderr"] },
        )
      : undefined;

    const upload = new command.remote.CopyToRemote(
      `${name}-upload`,
      {
        connection,
        source: new pulumi.asset.FileAsset(args.release.tarballPath),
        remotePath: incomingPath(admin, hash),
        triggers: [hash, ...machine],
      },
      { parent: this, dependsOn: [cloudInit] },
    );

    const cmds = releaseCommands(hash);
    const release = new command.remote.Command(
      `${name}-release`,
      {
        connection,
        // A new machine changes only the command text (an update: create runs again), never
        // the triggers: a replacement would run the old resource's `uninstall <hash>`
        // against the same host name, i.e. on the new machine, after activating there.
        create: machine.length ? pulumi.all(machine).apply((m) => createOnMachine(cmds.create, m)) : cmds.create,
        ...(args.uninstallOnDelete ? { delete: cmds.delete } : {}),
        triggers: [hash],
        logging: "stdoutAndStderr",
      },
      { parent: this, dependsOn: settings ? [upload, settings] : [upload] },
    );

    this.releaseHash = release.stdout.apply(() => hash);
    this.activation = release.stdout;
    this.registerOutputs({ releaseHash: this.releaseHash, configHash: this.configHash, activation: this.activation });
  }
}

// ---------------------------------------------------------------------------------
// Pure helpers: everything the component sends to the host is built here and unit-tested.


export class ReleaseRefError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReleaseRefError";
  }
}

export function assertReleaseHash(hash: string): string {
  if (typeof hash !== "string" || !RELEASE_HASH_PATTERN.test(hash))
    throw new ReleaseRefError(`release hash ${JSON.stringify(String(hash)).slice(0, 80)} is not 12-64 lowercase hex characters: use the hash scripts/bundle.ts printed`);
  return hash;
}

export function assertLinuxName(name: string): string {
  const problem = linuxNameProblem(name);
  if (problem) throw new Error(`adminUser: ${problem}`);
  return name;
}

/** Where the release is uploaded; picortex-release install reads it from there. */
export function incomingPath(adminUser: string, hash: string): string {
  return `/home/${assertLinuxName(adminUser)}/incoming/${assertReleaseHash(hash)}.tar.gz`;
}

/** The exact command lines, matching the sudoers rule `picortex-release ^(…)( [a-f0-9]{12,64})?$`. */
export function releaseCommands(hash: string): { install: string; activate: string; create: string; delete: string } {
  const h = assertReleaseHash(hash);
  const install = `sudo -n ${RELEASE_HELPER_PATH} install ${h}`;
  const activate = `sudo -n ${RELEASE_HELPER_PATH} activate ${h}`;
  return { install, activate, create: `${install} && ${activate}`, delete: `sudo -n ${RELEASE_HELPER_PATH} uninstall ${h}` };
}

/**
 * `cloud-init status --wait` exits 0 when done, 1 on error and 2 when it finished with
 * recoverable errors (degraded). Only 1 fails the deployment; the long status is printed
 * either way so the reason shows in the Pulumi output.
 */
export const CLOUD_INIT_WAIT_COMMAND =
  "rc=0; cloud-init status --wait --long || rc=$?; " +
  'if [ "$rc" -eq 2 ]; then echo "cloud-init finished with recoverable errors (see /var/log/cloud-init.log)" >&2; rc=0; fi; exit "$rc"';

/**
 * Fixed text, no input interpolated: the settings arrive on stdin. If a release is
 * already active (a config-only change), re-activate it so the settings take effect.
 */
export const SETTINGS_UPLOAD_COMMAND =
  'set -eu; umask 077; mkdir -p "$HOME/incoming"; cat > "$HOME/incoming/runtime-settings.json.tmp"; ' +
  'mv -f "$HOME/incoming/runtime-settings.json.tmp" "$HOME/incoming/runtime-settings.json"; ' +
  `cur="$(basename "$(readlink ${CURRENT_RELEASE_LINK} 2>/dev/null)" 2>/dev/null || true)"; ` +
  `case "$cur" in ""|*[!a-f0-9]*) ;; *) sudo -n ${RELEASE_HELPER_PATH} activate "$cur" ;; esac`;

/** Canonical JSON (sorted keys, no undefined) so equal settings give an equal config hash. */
export function settingsDocument(s: {
  runtimeConfig?: Record<string, unknown>;
  anthropicApiKey?: string;
  apiToken?: string;
  bridges?: Record<string, unknown>;
  telegramBotToken?: string;
  webhookSecret?: string;
}): string {
  const doc: Record<string, unknown> = {};
  if (s.anthropicApiKey !== undefined) doc.anthropicApiKey = s.anthropicApiKey;
  if (s.apiToken !== undefined) doc.apiToken = s.apiToken;
  if (s.bridges !== undefined) doc.bridges = s.bridges;
  if (s.telegramBotToken !== undefined) doc.telegramBotToken = s.telegramBotToken;
  if (s.webhookSecret !== undefined) doc.webhookSecret = s.webhookSecret;
  if (s.runtimeConfig !== undefined) doc.runtimeConfig = s.runtimeConfig;
  return canonicalJson(doc);
}

export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, x]) => [k, sort(x)]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

/**
 * The release command for a given machine: a trailing shell comment carrying a digest
 * of the machine identity (never the raw values, which could contain a newline), so a
 * new machine updates the command and runs it again without a replacement.
 */
export function createOnMachine(create: string, machine: Array<string | number>): string {
  return `${create} # machine ${configHash(JSON.stringify(machine))}`;
}

export function configHash(doc: string): string {
  return createHash("sha256").update(doc).digest("hex").slice(0, 16);
}

export function connectionArgs(c: RuntimeConnectionArgs, admin: string): command.types.input.remote.ConnectionArgs {
  return {
    host: c.host,
    port: c.port ?? 22,
    user: admin,
    privateKey: pulumi.secret(c.privateKey),
    ...(c.privateKeyPassword !== undefined ? { privateKeyPassword: pulumi.secret(c.privateKeyPassword) } : {}),
    ...(c.hostKey !== undefined ? { hostKey: c.hostKey } : {}),
    // The readiness poll already waited; these only absorb a brief sshd restart.
    dialErrorLimit: 20,
    perDialTimeout: 15,
  };
}

/** Reads dist/release/<hash>.json (written by scripts/bundle.ts) into a ReleaseRef. */
export function readReleaseManifest(manifestPath: string): ReleaseRef {
  let parsed: { hash?: unknown; tarball?: unknown };
  try {
    parsed = JSON.parse(readFileSync(manifestPath, "utf8")) as { hash?: unknown; tarball?: unknown };
  } catch (err) {
    throw new ReleaseRefError(`cannot read release manifest ${manifestPath}: ${(err as Error).message}. Build one with: npx tsx scripts/bundle.ts`);
  }
  const hash = assertReleaseHash(String(parsed.hash));
  if (parsed.tarball !== `${hash}.tar.gz`) throw new ReleaseRefError(`release manifest ${manifestPath} names tarball ${String(parsed.tarball)}, expected ${hash}.tar.gz`);
  return { hash, tarballPath: join(dirname(manifestPath), `${hash}.tar.gz`) };
}

/**
 * Runs locally as `node -e` with host/port/attempts/delay in the environment (never
 * interpolated into code). Succeeds once sshd answers with its banner. The program is a
 * real, type-checked file (components/programs/ssh-readiness.cjs), read as it is.
 */
export const READINESS_SCRIPT = readProgram("ssh-readiness.cjs");
