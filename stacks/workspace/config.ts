/**
 * The workspace stack's configuration: every key has a type, a default, a description
 * and an actionable message. Read ONCE, at the top of the program, from the
 * `picortex:` namespace; nothing else reads Pulumi config.
 *
 * docs/workspace-stack.md's reference table is generated from CONFIG_KEYS (see
 * `configReferenceMarkdown`), and a test fails when it is stale.
 */
import { z } from "zod";
import { issueMessage } from "../../agent-runtime/config/issue-message.js";
import {
  cidrProblem,
  hostnameProblem,
  isWholeInternet,
  sshPublicKeyProblem,
  tailscaleTagProblem,
  labelProblem,
} from "../../templates/validators.js";
import { CHAT_USER_PREFIX, DEFAULT_ADMIN_USER, linuxNameProblem } from "../../agent-runtime/host/contract.js";
import type { HostVarsInput } from "../../templates/host-vars.js";
import { stackBridgesSchema, TELEGRAM_TOKEN_SHAPE, WEBHOOK_SECRET_MIN } from "../../agent-runtime/config/bridges.js";
import { fingerprint, hostKeyPublicLine, publicKeyCore, publicKeyOfPrivateKey } from "../../components/ssh-keys.js";

/** Server types Hetzner retired, and what to use instead (kube-hetzner PR #1991). */
export const RETIRED_SERVER_TYPES: Record<string, string> = {
  cx11: "cx23",
  cx21: "cx23",
  cx31: "cx33",
  cx41: "cx43",
  cx51: "cx53",
  cx22: "cx23",
  cx32: "cx33",
  cx42: "cx43",
  cx52: "cx53",
};

export const LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
/** Hetzner sells the CX (shared Intel) and CAX (Arm) lines in its EU locations only. */
export const EU_LOCATIONS = ["fsn1", "nbg1", "hel1"] as const;

/** "unsupported location for server type" at create time, caught at preview (issue 21 item 18). */
export function placementProblem(serverType: string, location: string): string | null {
  const line = /^(cx|cax)\d/.exec(serverType.toLowerCase())?.[1];
  if (!line || (EU_LOCATIONS as readonly string[]).includes(location)) return null;
  return `server type "${serverType}" is not sold in ${location}: Hetzner's ${line.toUpperCase()} line is EU-only (${EU_LOCATIONS.join(", ")}). Use an EU location, or a type sold in ${location} such as "cpx21" (3 vCPU AMD, 4 GB) or "ccx13"`;
}

const check =
  (fn: (v: string) => string | null) =>
  (v: string, ctx: z.RefinementCtx): void => {
    const problem = fn(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  };

export function serverTypeProblem(type: string): string | null {
  const successor = RETIRED_SERVER_TYPES[type.toLowerCase()];
  if (successor) {
    return `server type "${type}" was retired by Hetzner ("Could not find server type"); use its successor "${successor}" (same class, current generation)`;
  }
  if (!/^(cx|cpx|cax|ccx)\d{2}$/.test(type)) {
    return `"${type.slice(0, 30)}" is not a Hetzner server type: use e.g. "cx23" (2 vCPU, 4 GB, the default), "cx33", "cpx21" or "cax11"`;
  }
  return null;
}

export function locationProblem(location: string): string | null {
  const dc = /^([a-z]+\d?)-dc\d+$/.exec(location);
  if (dc) return `"${location}" is a datacenter (deprecated in the hcloud provider); set the location instead: "${dc[1]}"`;
  if (!(LOCATIONS as readonly string[]).includes(location)) return `unknown location "${location.slice(0, 30)}": use one of ${LOCATIONS.join(", ")}`;
  return null;
}

interface KeySpec {
  schema: z.ZodType;
  /** How the value is stored in stack config: plain string, or YAML/JSON structure. */
  kind: "string" | "object";
  description: string;
  required?: boolean;
  example?: string;
}

/** Every config key, in documentation order. */
export const CONFIG_KEYS = {
  sshPublicKey: {
    schema: z.string({ error: "is required: your OpenSSH public key line (cat ~/.ssh/id_ed25519.pub)" }).superRefine(check(sshPublicKeyProblem)),
    kind: "string",
    required: true,
    description: "OpenSSH public key of the operator; installed for the admin user and registered with Hetzner.",
    example: "ssh-ed25519 AAAAC3Nza… you@laptop",
  },
  serverType: {
    schema: z.string().superRefine(check(serverTypeProblem)).default("cx23"),
    kind: "string",
    description: "Hetzner server type. cx23 = 2 vCPU / 4 GB. Retired types (cx22, cx32, cx42, …) are rejected with their successor.",
  },
  location: {
    schema: z.string().superRefine(check(locationProblem)).default("nbg1"),
    kind: "string",
    description: `Hetzner location (not datacenter): ${LOCATIONS.join(", ")}. Changing it replaces the server.`,
  },
  image: {
    schema: z.enum(["ubuntu-24.04", "debian-12"], { error: 'must be "ubuntu-24.04" (default) or "debian-12"' }).default("ubuntu-24.04"),
    kind: "string",
    description: "Server image: ubuntu-24.04 or debian-12. Changing it replaces the server.",
  },
  hostname: {
    schema: z.string().superRefine(check(hostnameProblem)).default("picortex"),
    kind: "string",
    description: "Server name and tailnet (MagicDNS) host name.",
  },
  adminUser: {
    schema: z
      .string()
      .superRefine(check(linuxNameProblem))
      .superRefine(check((v) => (v.startsWith(CHAT_USER_PREFIX) ? `must not start with "${CHAT_USER_PREFIX}" (reserved for chat users)` : null)))
      .default(DEFAULT_ADMIN_USER),
    kind: "string",
    description: "Deploy account on the host (your SSH key, no general sudo; may run picortex-release).",
  },
  tailscaleTags: {
    schema: z.array(z.string().superRefine(check(tailscaleTagProblem))).min(1, "list at least one tag, e.g. [tag:picortex]").default(["tag:picortex"]),
    kind: "object",
    description: "ACL tags the host joins with; each must be in your tailnet policy's tagOwners.",
  },
  tailscaleKeyExpirySeconds: {
    schema: z.number().int().min(300, "at least 300 seconds").max(86_400, "at most 86400 (1 day): the key is only for first boot").default(3600),
    kind: "object",
    description: "Lifetime of the single-use auth key (only first boot uses it).",
  },
  tailscaleSsh: {
    schema: z.boolean().default(false),
    kind: "object",
    description:
      "Enable Tailscale SSH (`tailscale up --ssh`). Default false: Tailscale SSH would answer port 22 on the tailnet address in place of sshd, under the tailnet policy's ssh rules (whose default never matches a tagged host), so the deploy and doctor could not reach sshd. sshd, reached over the tailnet, is the one SSH boundary.",
  },
  tailscaleDirectUdp: {
    schema: z.boolean().default(false),
    kind: "object",
    description: "Open UDP 41641 inbound so peers connect directly instead of through DERP relays.",
  },
  sshAllowlist: {
    schema: z.array(z.string().superRefine(check(cidrProblem))).default([]),
    kind: "object",
    description: "CIDRs allowed to reach public SSH (tcp/22) for bootstrap. Empty = no public SSH (use the tailnet).",
  },
  allowSshFromAnywhere: {
    schema: z.boolean().default(false),
    kind: "object",
    description: "Required to put 0.0.0.0/0 or ::/0 in sshAllowlist; `pulumi up` then warns loudly.",
  },
  protection: {
    schema: z.boolean().default(true),
    kind: "object",
    description:
      "Hetzner delete (+ rebuild) protection AND Pulumi `protect` on the server and data volume: a change that would replace them fails at preview. Before `pulumi destroy`: npx tsx scripts/unprotect.ts (a targeted up that never needs the host).",
  },
  dataVolumeSizeGb: {
    schema: z
      .number()
      .int()
      .refine((n) => n === 0 || (n >= 10 && n <= 10240), "Hetzner volumes are 10 to 10240 GB (0 = no volume: chats and the brain then live on the root disk)")
      .default(20),
    kind: "object",
    description:
      "Size of the Hetzner Volume holding /srv/picortex (chats) and /var/lib/picortex (runtime state, brain), so they survive a replaced server. Protected like the server; growing it is in place. 0 = none.",
  },
  hostGeneration: {
    schema: z.number().int().min(1, "starts at 1").default(1),
    kind: "object",
    description:
      "Bump it (2, 3, …) to rebuild the server on purpose: the server AND its one-time tailnet auth key are replaced together (`pulumi up --replace` on the server alone would boot it with the spent key). Refused at preview while protection is on.",
  },
  applyTemplateChanges: {
    schema: z.boolean().default(false),
    kind: "object",
    description: "Replace the server when the rendered cloud-config changes. Default false: template edits never silently rebuild a host (its chats live on it).",
  },
  existingSshKey: {
    schema: z
      .string()
      .refine((v) => v === "" || /^[A-Za-z0-9][A-Za-z0-9@._ -]{0,63}$/.test(v), "must be the name or numeric id of an SSH key in your Hetzner project (hcloud ssh-key list)")
      .default(""),
    kind: "string",
    description:
      "Name or id of an SSH key already in the Hetzner project to reuse instead of registering sshPublicKey again (Hetzner refuses a second key with the same fingerprint). Empty = register it.",
  },
  sshHostPublicKey: {
    schema: z
      .string()
      .superRefine((v, ctx) => {
        const p = v === "" ? null : sshPublicKeyProblem(v);
        if (p) ctx.addIssue({ code: "custom", message: p.replace(/paste one line.*$/, 'the line ssh-keyscan prints after the host name ("ssh-ed25519 AAAA…")') });
      })
      .default(""),
    kind: "string",
    description:
      "Pin only: the SSH host key of a host created before picortex:sshHostKey existed (ssh-keyscan -t ed25519 <host>). New hosts use the secret sshHostKey instead.",
  },
  releaseManifest: {
    schema: z.string().default(""),
    kind: "string",
    description:
      "Release manifest from the bundler (e.g. dist/release/latest.json). When set, `pulumi up` also deploys the runtime over SSH (RuntimeDeployment) and needs the secret picortex:adminPrivateKey. Empty = host only.",
  },
  deployVia: {
    schema: z.enum(["tailnet", "public-ip"], { error: 'must be "tailnet" (default) or "public-ip"' }).default("tailnet"),
    kind: "string",
    description: "How the deploy reaches SSH: the tailnet host name (this machine must be on the tailnet), or the public IPv4 (needs sshAllowlist).",
  },
  bridges: {
    schema: stackBridgesSchema.default({}),
    kind: "object",
    description:
      "Messaging bridges (docs/bridges.md): telegram {allowChats, chatMap, defaultMode, adminUserIds, approvers, …}, webhook {callbackUrl, chatMap, defaultMode, windowSeconds, approvers}, budgetTokens, memberBudgetTokens, toolsWithoutApproval, approvalTimeoutSeconds, portalUrl. Tool approvals: approvers (chat id or \"*\" → user ids; `/whoami` in the group tells an id) are asked for every tool outside toolsWithoutApproval. A bridge is on when its secret is set: picortex:telegramBotToken, picortex:webhookSecret. Delivered with each deploy (no server change).",
    example: '{"telegram": {"allowChats": ["-1001234567890"], "chatMap": {"-1001234567890": "family"}}}',
  },
  labels: {
    schema: z
      .record(z.string(), z.string())
      .superRefine((labels, ctx) => {
        for (const [k, v] of Object.entries(labels)) {
          const p = labelProblem(k, v);
          if (p) ctx.addIssue({ code: "custom", message: p });
        }
      })
      .default({}),
    kind: "object",
    description: "Extra Hetzner labels (keys/values ≤ 63 chars, alphanumeric at both ends; no hetzner.cloud/ prefix).",
  },
} satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

const shape = Object.fromEntries(Object.entries(CONFIG_KEYS).map(([k, spec]) => [k, spec.schema])) as {
  [K in ConfigKey]: (typeof CONFIG_KEYS)[K]["schema"];
};

export const workspaceConfigSchema = z
  .object(shape)
  .strict()
  .superRefine((c, ctx) => {
    if (c.tailscaleSsh && c.deployVia === "tailnet" && c.releaseManifest !== "") {
      ctx.addIssue({
        code: "custom",
        path: ["tailscaleSsh"],
        message:
          "Tailscale SSH answers port 22 on the tailnet address in place of sshd, under your tailnet policy's ssh rules (the default never matches a tagged host), so the deploy over the tailnet would never reach sshd: keep picortex:tailscaleSsh false (sshd is the SSH door), or deploy with deployVia public-ip",
      });
    }
    const placement = placementProblem(c.serverType, c.location);
    if (placement) ctx.addIssue({ code: "custom", path: ["serverType"], message: placement });
    if (c.deployVia === "public-ip" && c.releaseManifest !== "" && c.sshAllowlist.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["deployVia"],
        message: "deploying over the public IP needs public SSH: add your address to picortex:sshAllowlist (e.g. [203.0.113.7/32]), or deploy over the tailnet",
      });
    }
    const open = c.sshAllowlist.filter(isWholeInternet);
    if (open.length > 0 && !c.allowSshFromAnywhere) {
      ctx.addIssue({
        code: "custom",
        path: ["sshAllowlist"],
        message: `${open.join(", ")} would open SSH to the whole internet: list your own address (e.g. 203.0.113.7/32), or also set picortex:allowSshFromAnywhere true if you really mean it`,
      });
    }
  });

export type WorkspaceConfig = z.output<typeof workspaceConfigSchema>;

export class WorkspaceConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid workspace stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}\nFix with \`pulumi config set picortex:<key> <value>\` (see Pulumi.example.yaml).`);
    this.name = "WorkspaceConfigError";
  }
}

/** Optimal string alignment distance (Levenshtein plus adjacent swaps), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase(), y = b.toLowerCase();
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[x.length]![y.length]!;
}

/**
 * The known key a misspelled one most likely meant: the nearest by edit distance, when it
 * is near enough to be a typo (at most 3 edits and under half the key's length), else null.
 */
export function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const distance = editDistance(key, k);
    if (distance < bestDistance) [best, bestDistance] = [k, distance];
  }
  return best !== null && bestDistance <= Math.min(3, Math.floor(Math.max(key.length, best.length) / 2) - 1) ? best : null;
}

/** Every key the workspace stack reads under `picortex:`: settings and secrets. */
export function knownWorkspaceKeys(): string[] {
  return [...Object.keys(CONFIG_KEYS), ...Object.keys(SECRET_KEYS)];
}

/**
 * One problem per `picortex:` key the stack does not read (issue 21 item 19: a typo such
 * as picortex:protecton used to be ignored, silently keeping the default). Keys of other
 * namespaces (hcloud:, tailscale:) are the providers' and are left alone. `how` is the
 * removal hint for where the keys came from.
 */
export function unknownKeyProblems(fullKeys: readonly string[], how: (fullKey: string) => string = () => ""): string[] {
  const known = knownWorkspaceKeys();
  return fullKeys
    .filter((k) => k.startsWith("picortex:") && !known.includes(k.slice("picortex:".length)))
    .map((k) => {
      const guess = closestKey(k.slice("picortex:".length), known);
      const head = guess ? `${k} is not a known setting: did you mean picortex:${guess}?` : `${k} is not a known setting (known: ${known.join(", ")})`;
      return head + how(k);
    });
}

/** Validate raw values (as read from stack config). Throws WorkspaceConfigError listing every problem. */
export function parseWorkspaceConfig(raw: Record<string, unknown>): WorkspaceConfig {
  const parsed = workspaceConfigSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => k in CONFIG_KEYS)));
  const problems = unknownKeyProblems(Object.keys(raw).filter((k) => !(k in CONFIG_KEYS)).map((k) => `picortex:${k}`));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const [key, ...rest] = issue.path.map(String);
      problems.push(`picortex:${key ?? "(root)"}${rest.length ? `[${rest.join(".")}]` : ""}: ${issueMessage(issue)}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new WorkspaceConfigError(problems);
  return parsed.data;
}

/**
 * Secret settings, read with `getSecret` (they stay Pulumi secrets end to end) and
 * set with `pulumi config set --secret picortex:<key> …`.
 */
export const SECRET_KEYS = {
  adminPrivateKey:
    "OpenSSH private key of the admin; its public half must be picortex:sshPublicKey (checked at preview). Required when releaseManifest is set. Set with: pulumi config set --secret picortex:adminPrivateKey < ~/.ssh/id_ed25519",
  adminPrivateKeyPassword: "Passphrase of adminPrivateKey, when it has one (a protected key without it is refused at preview).",
  sshHostKey:
    "The host's SSH host key (OpenSSH Ed25519, no passphrase), installed by cloud-init and pinned in every deploy connection. Required when releaseManifest is set (or pin an existing host with sshHostPublicKey). Generate: npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey",
  anthropicApiKey: "Anthropic API key (8-512 of A-Z a-z 0-9 _ -) installed as /etc/picortex/credentials/anthropic-api-key (root 0600, LoadCredential) by the deploy; optional.",
  apiToken:
    "Runtime API bearer token (16-256 of A-Z a-z 0-9 _ -) the chat stacks read as the output runtimeApiToken. Required when releaseManifest is set. Set with: openssl rand -hex 32 | pulumi config set --secret picortex:apiToken",
  telegramBotToken:
    "Telegram bot token from @BotFather (<digits>:<secret>); turns the Telegram bridge on. The deploy installs it root 0600 under /etc/picortex/credentials/bridges, loaded by the runtime unit as a credential. Set with: pulumi config set --secret picortex:telegramBotToken < token-file",
  webhookSecret:
    "Shared HMAC secret of the signed webhook (at least 32 printable characters); turns the webhook bridge on. Installed like telegramBotToken. Set with: openssl rand -hex 32 | pulumi config set --secret picortex:webhookSecret",
} as const;

export type SecretKey = keyof typeof SECRET_KEYS;
/** Raw secret values as read from config (plain strings here; the program wraps them in pulumi.secret). */
export type WorkspaceSecretValues = Partial<Record<SecretKey, string>>;

const API_TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
const ANTHROPIC_KEY = /^[A-Za-z0-9_-]{8,512}$/;

/** What the checks derive from the secrets (public halves only). */
export interface CheckedSecrets {
  /** Public line of adminPrivateKey (`ssh-ed25519 AAAA…`), when set. */
  adminPublicKey?: string;
  /** The host key the deploy pins: from sshHostKey, or sshHostPublicKey. */
  hostPublicKey?: string;
}

/**
 * Checks the secret settings against the config, at preview, before anything exists.
 * Messages never quote a secret value. Throws WorkspaceConfigError listing every problem.
 */
export function checkWorkspaceSecrets(config: WorkspaceConfig, s: WorkspaceSecretValues): CheckedSecrets {
  const problems: string[] = [];
  const out: CheckedSecrets = {};
  const deploying = config.releaseManifest !== "";
  if (s.apiToken !== undefined && !API_TOKEN.test(s.apiToken)) {
    problems.push(
      `picortex:apiToken must be 16-256 characters of A-Z a-z 0-9 _ - (the host refuses anything else; base64 has = + /): set a new one with  openssl rand -hex 32 | pulumi config set --secret picortex:apiToken`,
    );
  }
  if (s.anthropicApiKey !== undefined && !ANTHROPIC_KEY.test(s.anthropicApiKey.trim())) {
    problems.push("picortex:anthropicApiKey must be 8-512 characters of A-Z a-z 0-9 _ - (an Anthropic key, sk-ant-…): set it with  pulumi config set --secret picortex:anthropicApiKey < file");
  }
  if (s.adminPrivateKey !== undefined) {
    try {
      const info = publicKeyOfPrivateKey(s.adminPrivateKey, "picortex:adminPrivateKey");
      out.adminPublicKey = info.publicKey;
      if (publicKeyCore(info.publicKey) !== publicKeyCore(config.sshPublicKey)) {
        problems.push(
          `picortex:sshPublicKey (${fingerprint(config.sshPublicKey)}) is not the public half of picortex:adminPrivateKey (${info.fingerprint}), so the deploy could never log in: set it from your key with  ssh-keygen -y -f ~/.ssh/id_ed25519 | pulumi config set picortex:sshPublicKey`,
        );
      }
      if (info.encrypted && s.adminPrivateKeyPassword === undefined) {
        problems.push("picortex:adminPrivateKey has a passphrase: also set  pulumi config set --secret picortex:adminPrivateKeyPassword  (or use a deploy key without one)");
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
  } else if (deploying) {
    problems.push("picortex:adminPrivateKey is required when picortex:releaseManifest is set: pulumi config set --secret picortex:adminPrivateKey < ~/.ssh/id_ed25519");
  }
  if (s.sshHostKey !== undefined) {
    try {
      out.hostPublicKey = hostKeyPublicLine(s.sshHostKey);
      if (config.sshHostPublicKey !== "" && publicKeyCore(config.sshHostPublicKey) !== publicKeyCore(out.hostPublicKey)) {
        problems.push("picortex:sshHostPublicKey is not the public half of picortex:sshHostKey: unset one of them (pulumi config rm picortex:sshHostPublicKey)");
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
  } else if (config.sshHostPublicKey !== "") {
    out.hostPublicKey = publicKeyCore(config.sshHostPublicKey);
  } else if (deploying) {
    problems.push(
      "the deploy sends your secrets over SSH and must verify the host: set picortex:sshHostKey (a new host gets it through cloud-init):  npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey  , or, for a host created before, pin its key:  pulumi config set picortex:sshHostPublicKey \"$(ssh-keyscan -t ed25519 <host> | cut -d' ' -f2-)\"",
    );
  }
  if (s.telegramBotToken !== undefined && !TELEGRAM_TOKEN_SHAPE.test(s.telegramBotToken.trim())) {
    problems.push("picortex:telegramBotToken is not a Telegram bot token (<digits>:<secret>, as @BotFather gives it): set it with  pulumi config set --secret picortex:telegramBotToken < token-file");
  }
  if (s.webhookSecret !== undefined && !new RegExp(`^[\\x21-\\x7e]{${WEBHOOK_SECRET_MIN},512}$`).test(s.webhookSecret.trim())) {
    problems.push(`picortex:webhookSecret must be ${WEBHOOK_SECRET_MIN}-512 printable characters without spaces: set a new one with  openssl rand -hex 32 | pulumi config set --secret picortex:webhookSecret`);
  }
  problems.push(...bridgeSetupProblems(config, (key) => s[key] !== undefined));
  if (deploying && s.apiToken === undefined) {
    problems.push("picortex:apiToken is required when picortex:releaseManifest is set (the chat stacks read it as runtimeApiToken): openssl rand -hex 32 | pulumi config set --secret picortex:apiToken");
  }
  if (problems.length > 0) throw new WorkspaceConfigError(problems);
  return out;
}

/**
 * The bridges' settings against which of their secrets are set (not their values): shared by
 * the preview checks above and `npm run render`, which sees only whether a secret is present.
 */
export function bridgeSetupProblems(config: WorkspaceConfig, has: (key: "telegramBotToken" | "webhookSecret") => boolean): string[] {
  const problems: string[] = [];
  if (config.bridges.telegram !== undefined && !has("telegramBotToken")) {
    problems.push("picortex:bridges.telegram is set but the Telegram bridge is off without its token: pulumi config set --secret picortex:telegramBotToken < token-file  (or remove bridges.telegram)");
  }
  if (config.bridges.webhook !== undefined && !has("webhookSecret")) {
    problems.push("picortex:bridges.webhook is set but the webhook bridge is off without its secret: openssl rand -hex 32 | pulumi config set --secret picortex:webhookSecret  (or remove bridges.webhook)");
  }
  if (config.releaseManifest === "" && (has("telegramBotToken") || has("webhookSecret"))) {
    problems.push("a bridge secret is set but nothing deploys it: set picortex:releaseManifest (the bridges run in the deployed runtime)");
  }
  return problems;
}

/** Reads every secret key once (raw, for the checks above). */
export function readWorkspaceSecrets(source: { get(key: string): string | undefined }): WorkspaceSecretValues {
  const out: WorkspaceSecretValues = {};
  for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
    const v = source.get(key);
    if (v !== undefined && v !== "") out[key] = v;
  }
  return out;
}

/** The subset of pulumi.Config the reader needs (lets tests and `npm run render` supply values). */
export interface ConfigSource {
  get(key: string): string | undefined;
  getObject<T>(key: string): T | undefined;
  /**
   * Every full key the source holds (`picortex:…`, `hcloud:…`), when it can list them: then
   * a `picortex:` key the stack does not read is refused, naming the closest valid one.
   */
  keys?(): string[];
}

/** What the host needs besides the config: values that exist only at deploy time. */
export interface DeployTimeHostValues {
  /** Default `production`; `offline-test` is what the e2e test boots (no tailnet join). */
  profile?: "production" | "offline-test";
  /** The tailnet join key (production only): TailnetAccess creates it during `pulumi up`. */
  tailscaleAuthKey?: string;
  /** The data volume's device (only when the config asks for a volume): its id exists after the volume does. */
  dataVolumeDevice?: string;
}

/**
 * The one mapping from a parsed workspace config to the host's template variables
 * (renderHost's input): the stack program and `npm run render` both use it. Pure.
 * Without deploy-time values the result has no `tailscale` and no `dataVolume`.
 */
export function hostVarsFromConfig(config: WorkspaceConfig, deploy: DeployTimeHostValues = {}): HostVarsInput {
  const profile = deploy.profile ?? "production";
  return {
    profile,
    image: config.image,
    hostname: config.hostname,
    adminUser: config.adminUser,
    adminSshPublicKey: config.sshPublicKey,
    firewall: {
      tailscaleDirectUdp: config.tailscaleDirectUdp,
      sshAllowlist: config.sshAllowlist,
      allowSshFromAnywhere: config.allowSshFromAnywhere,
    },
    ...(profile === "production" && deploy.tailscaleAuthKey !== undefined
      ? { tailscale: { authKey: deploy.tailscaleAuthKey, tags: config.tailscaleTags, ssh: config.tailscaleSsh } }
      : {}),
    ...(config.dataVolumeSizeGb > 0 && deploy.dataVolumeDevice !== undefined ? { dataVolume: { device: deploy.dataVolumeDevice } } : {}),
  };
}

/** Read every known key once from the `picortex:` namespace and validate. */
export function readWorkspaceConfig(source: ConfigSource): WorkspaceConfig {
  const unknown = source.keys ? unknownKeyProblems(source.keys()) : [];
  if (unknown.length > 0) throw new WorkspaceConfigError(unknown);
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS) as Array<[ConfigKey, KeySpec]>) {
    let value: unknown;
    try {
      value = spec.kind === "string" ? source.get(key) : source.getObject(key);
    } catch (err) {
      throw new WorkspaceConfigError([`picortex:${key}: could not be read as ${spec.kind === "object" ? "YAML/JSON" : "text"}: ${(err as Error).message}`]);
    }
    if (value !== undefined) raw[key] = value;
  }
  return parseWorkspaceConfig(raw);
}

function describeDefault(spec: KeySpec): string {
  if (spec.required) return "**required**";
  const parsed = spec.schema.safeParse(undefined);
  return parsed.success ? "`" + JSON.stringify(parsed.data) + "`" : "";
}

/** Markdown reference table, generated from CONFIG_KEYS (kept current by a test). */
export function configReferenceMarkdown(): string {
  const rows = (Object.entries(CONFIG_KEYS) as Array<[string, KeySpec]>).map(
    ([key, spec]) => `| \`picortex:${key}\` | ${spec.kind === "string" ? "string" : "YAML value"} | ${describeDefault(spec)} | ${spec.description.replace(/\|/g, "\\|")} |`,
  );
  const secrets = Object.entries(SECRET_KEYS).map(([key, description]) => `| \`picortex:${key}\` | secret | (unset) | ${description.replace(/\|/g, "\\|")} |`);
  return ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |", ...rows, ...secrets, ""].join("\n");
}
