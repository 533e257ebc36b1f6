/**
 * HostVars: the one typed variable object every host template is rendered from.
 *
 * `renderHost(vars)` (render-host.ts) parses it with `hostVarsSchema`, so callers may
 * pass only the required fields and get the documented defaults. Equal input gives
 * byte-identical output; any change to the output replaces the server if the stack
 * is configured to apply template changes (see docs/workspace-stack.md).
 */
import { z } from "zod";
import { linuxNameProblem, CHAT_GROUP, DEFAULT_ADMIN_USER, DEFAULT_RUNTIME_PORT, DEFAULT_CHATS_ROOT, DEFAULT_CLAUDE_PATH, OPS_GROUP, RUNTIME_USER, CHAT_USER_PREFIX } from "../agent-runtime/host/contract.js";
import { DEFAULT_HOST_GATEWAY_PORT } from "../agent-runtime/host/agent-key.js";
import {
  cidrProblem,
  hostnameProblem,
  isWholeInternet,
  safePathProblem,
  sshPublicKeyProblem,
  tailscaleTagProblem,
} from "./validators.js";

const refine =
  (check: (v: string) => string | null) =>
  (value: string, ctx: z.RefinementCtx): void => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  };

const linuxName = z.string().superRefine(refine(linuxNameProblem));
const notChatPrefixed = (what: string) => (v: string) =>
  v.startsWith(CHAT_USER_PREFIX) ? `${what} "${v}" must not start with "${CHAT_USER_PREFIX}": that prefix is reserved for chat users, which the runtime may delete` : null;

/** Images the templates know how to provision (apt repositories differ per distribution). */
export const SUPPORTED_IMAGES = {
  "ubuntu-24.04": { distro: "ubuntu", codename: "noble" },
  "debian-12": { distro: "debian", codename: "bookworm" },
} as const;
export type SupportedImage = keyof typeof SUPPORTED_IMAGES;

export const hostVarsSchema = z
  .object({
    /**
     * `production`: a real Hetzner host; installs Node.js LTS (NodeSource), Tailscale and
     * the Claude Code CLI from the internet and joins the tailnet.
     * `offline-test`: the same host for a container/VM with no internet (the e2e test):
     * skips exactly those internet-only steps (and the `packages:` module) and says so in
     * a comment in the output; the test image must already contain node, tmux, sudo and
     * the claude binary at `claudePath`.
     */
    profile: z.enum(["production", "offline-test"]).default("production"),
    /** Server image; selects the apt repositories for Node.js and Tailscale. */
    image: z.enum(Object.keys(SUPPORTED_IMAGES) as [SupportedImage, ...SupportedImage[]]).default("ubuntu-24.04"),
    /** Host name on the tailnet and in /etc/hostname. */
    hostname: z.string().superRefine(refine(hostnameProblem)).default("picortex"),
    /** Deploy account: the operator's SSH key, member of the ops group, no general sudo. */
    adminUser: linuxName.superRefine(refine(notChatPrefixed("admin user"))).default(DEFAULT_ADMIN_USER),
    /** One OpenSSH public key line for the admin user. Required. */
    adminSshPublicKey: z.string().superRefine(refine(sshPublicKeyProblem)),
    /** System user the runtime service runs as (no login, no home outside its state dir). */
    runtimeUser: linuxName.superRefine(refine(notChatPrefixed("runtime user"))).default(RUNTIME_USER),
    /** Group whose members may create/delete chat users through the scoped sudoers rules. */
    opsGroup: linuxName.default(OPS_GROUP),
    /**
     * Primary group of every chat user; the run-as rule only targets its members.
     * Must stay `picortex-chats` on real hosts: the runtime's useradd argv names it.
     */
    chatGroup: linuxName.default(CHAT_GROUP),
    /** Parent of every chat home (`<chatsRoot>/<id>`); root-owned 0711. */
    chatsRoot: z.string().superRefine(refine(safePathProblem)).default(DEFAULT_CHATS_ROOT),
    /** The Claude Code CLI the turn runner starts as a chat user. */
    claudePath: z.string().superRefine(refine(safePathProblem)).default(DEFAULT_CLAUDE_PATH),
    /** npm version of @anthropic-ai/claude-code installed in production (pinned: a change replaces the server). */
    claudeCodeVersion: z.string().regex(/^\d+\.\d+\.\d+$/, "claudeCodeVersion must be an exact version like 2.1.197").default("2.1.197"),
    /** Node.js major version from NodeSource (production only). */
    nodeMajor: z.number().int().min(20).max(40).default(24),
    /** Port the runtime listens on (loopback + tailnet address). */
    runtimePort: z.number().int().min(1024).max(65535).default(DEFAULT_RUNTIME_PORT),
    /**
     * Loopback port of the key gateway (runtime.json turns.gatewayPort): the chats' and the
     * portal agent's own listener. The agent unit's Claude Code settings name the same value.
     */
    gatewayPort: z.number().int().min(1024).max(65535).default(DEFAULT_HOST_GATEWAY_PORT),
    /**
     * Tailscale join (production): the single-use pre-authorized key (a secret: it is
     * written to a root-only file, passed as `--auth-key=file:…` so it never shows in
     * `ps`, and deleted after joining), and the ACL tags to advertise.
     */
    tailscale: z
      .object({
        authKey: z.string().min(1, "tailscale.authKey is empty: TailnetAccess must supply a key").regex(/^[A-Za-z0-9_-]+$/, "tailscale.authKey contains characters a Tailscale key never has"),
        tags: z.array(z.string().superRefine(refine(tailscaleTagProblem))).min(1, "advertise at least one tag (e.g. tag:picortex) so the host is owned by the tag, not a person"),
        /** Enable Tailscale SSH (`--ssh`): the break-glass path, governed by tailnet ACLs. */
        ssh: z.boolean().default(true),
      })
      .optional(),
    /**
     * The host's SSH host key (Ed25519, OpenSSH format), written by cloud-init `ssh_keys`
     * instead of generating one, so the deploy can pin it before the first connection.
     * Unset: cloud-init generates host keys as usual (and the output has no ssh_keys).
     */
    sshHostKey: z
      .object({
        privateKey: z
          .string()
          .regex(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n?$/, "sshHostKey.privateKey must be an OpenSSH private key (scripts/host-key.ts makes one)"),
        publicKey: z.string().superRefine(refine(sshPublicKeyProblem)).refine((k) => k.startsWith("ssh-ed25519 "), "sshHostKey.publicKey must be an ssh-ed25519 key"),
      })
      .optional(),
    /**
     * A data volume (Hetzner Volume, ext4, formatted by Hetzner) that holds
     * `/srv/picortex` (chat homes) and `/var/lib/picortex` (runtime state, brain), so they
     * survive a replaced server. cloud-init waits for the device, mounts it at
     * /mnt/picortex-data and bind-mounts both directories from it, before anything
     * writes there. Unset: both live on the root disk.
     */
    dataVolume: z
      .object({
        device: z.string().regex(/^\/dev\/disk\/by-id\/[A-Za-z0-9_.:-]+$/, "dataVolume.device must be a /dev/disk/by-id/… path (e.g. /dev/disk/by-id/scsi-0HC_Volume_123)"),
      })
      .optional(),
    /** Firewall (Hetzner, public interface only). Nothing inbound by default. */
    firewall: z
      .object({
        /** Open UDP 41641 from anywhere so peers can connect directly instead of via DERP relays. */
        tailscaleDirectUdp: z.boolean().default(false),
        /** CIDRs allowed to reach SSH (tcp/22) on the public address, for bootstrap. */
        sshAllowlist: z.array(z.string().superRefine(refine(cidrProblem))).default([]),
        /** Must be true to put 0.0.0.0/0 or ::/0 in sshAllowlist; the renderer then warns. */
        allowSshFromAnywhere: z.boolean().default(false),
      })
      .prefault({}),
  })
  .strict()
  .superRefine((vars, ctx) => {
    if (vars.profile === "production" && !vars.tailscale) {
      ctx.addIssue({ code: "custom", path: ["tailscale"], message: "the production profile joins the tailnet: supply tailscale.authKey and tailscale.tags" });
    }
    const open = vars.firewall.sshAllowlist.filter(isWholeInternet);
    if (open.length > 0 && !vars.firewall.allowSshFromAnywhere) {
      ctx.addIssue({
        code: "custom",
        path: ["firewall", "sshAllowlist"],
        message: `${open.join(", ")} opens SSH to the whole internet; list your own address (e.g. 203.0.113.7/32) or, if you really mean it, also set allowSshFromAnywhere: true`,
      });
    }
    const names = [vars.adminUser, vars.runtimeUser];
    if (new Set(names).size !== names.length) ctx.addIssue({ code: "custom", path: ["adminUser"], message: "adminUser and runtimeUser must differ" });
    const groups = [vars.opsGroup, vars.chatGroup];
    if (new Set(groups).size !== groups.length) ctx.addIssue({ code: "custom", path: ["chatGroup"], message: "opsGroup and chatGroup must differ" });
    if ([vars.adminUser, vars.runtimeUser].some((u) => groups.includes(u))) {
      ctx.addIssue({ code: "custom", path: ["opsGroup"], message: "user names and the ops/chat group names must not collide" });
    }
  });

/** What callers pass (defaults optional). */
export type HostVarsInput = z.input<typeof hostVarsSchema>;
/** What renderers receive (defaults applied). */
export type HostVars = z.output<typeof hostVarsSchema>;

export class HostVarsError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid host variables:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
    this.name = "HostVarsError";
  }
}

export function parseHostVars(input: HostVarsInput): HostVars {
  const parsed = hostVarsSchema.safeParse(input);
  if (!parsed.success) {
    throw new HostVarsError(parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  }
  return parsed.data;
}
