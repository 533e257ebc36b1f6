/**
 * The `#cloud-config` document, built with the `yaml` library's Document API (never by
 * concatenating YAML text) and printed with fixed options so equal input is
 * byte-identical. Checked in tests with `cloud-init schema --config-file … --annotate`.
 */
import { gzipSync } from "node:zlib";
import { Document, Scalar, YAMLMap, YAMLSeq } from "yaml";
import type { HostFile } from "./host-file.js";

export interface CloudConfigUser {
  name: string;
  gecos: string;
  shell: string;
  groups?: string;
  lock_passwd: true;
  ssh_authorized_keys?: string[];
  system?: true;
  homedir?: string;
  no_create_home?: true;
}

export interface CloudConfigInput {
  headerComment: string;
  hostname: string;
  groups: string[];
  users: CloudConfigUser[];
  /** cc_ssh `ssh_keys` (e.g. ed25519_private / ed25519_public): fixed host keys; unset = generated. */
  sshKeys?: Record<string, string>;
  /** Undefined: the packages module is left out (offline-test). */
  packages?: string[];
  files: HostFile[];
  /** Each step is an argv array (no shell), or a fixed shell statement such as `set -eu`. */
  runcmd: Array<string[] | string>;
  runcmdComment: string;
  /** false: write every file as a literal block (no gzip), e.g. for hashing. Default true. */
  compress?: boolean;
}

/** cloud-init runs write_files before it creates users; files owned by them must wait. */
function needsDefer(owner: string): boolean {
  return owner !== "root:root";
}

/**
 * Files larger than 400 bytes are written gzip+base64 (cloud-init decodes them) so the whole
 * document stays well under Hetzner's 32 KiB user_data limit. zlib output is
 * deterministic for a given zlib build (mtime 0, level 9); a Node upgrade that changes
 * zlib could change these bytes, which is one reason userData changes are ignored on
 * existing servers by default (see docs/workspace-stack.md).
 */
export const COMPRESS_ABOVE_BYTES = 400;

function block(text: string): Scalar {
  const s = new Scalar(text);
  // Literal blocks keep file contents readable and exact (trailing newline included).
  s.type = text.includes("\n") ? Scalar.BLOCK_LITERAL : Scalar.PLAIN;
  return s;
}

export function renderCloudConfig(input: CloudConfigInput): string {
  const doc = new Document();
  const root = new YAMLMap();
  const set = (key: string, value: unknown) => root.add(doc.createPair(key, value));

  set("hostname", input.hostname);
  set("preserve_hostname", false);
  set("ssh_pwauth", false);
  set("disable_root", true);
  if (input.sshKeys) {
    const keys = new YAMLMap();
    for (const [k, v] of Object.entries(input.sshKeys)) keys.add(doc.createPair(k, block(v.endsWith("\n") || !v.includes("\n") ? v : v + "\n")));
    set("ssh_keys", keys);
  }
  set("groups", input.groups);
  // `default` first, or the image's default user (and the cloud's SSH keys) is lost.
  set("users", ["default", ...input.users]);
  if (input.packages) {
    set("package_update", true);
    set("package_upgrade", false);
    set("packages", input.packages);
  }

  const writeFiles = new YAMLSeq();
  for (const f of input.files) {
    const entry = new YAMLMap();
    entry.add(doc.createPair("path", f.path));
    entry.add(doc.createPair("owner", f.owner));
    entry.add(doc.createPair("permissions", f.mode));
    if (needsDefer(f.owner)) entry.add(doc.createPair("defer", true));
    if (input.compress !== false && Buffer.byteLength(f.content) > COMPRESS_ABOVE_BYTES) {
      entry.add(doc.createPair("encoding", "gz+b64"));
      entry.add(doc.createPair("content", gzipSync(f.content, { level: 9 }).toString("base64")));
    } else {
      entry.add(doc.createPair("content", block(f.content)));
    }
    writeFiles.items.push(entry);
  }
  root.add(doc.createPair("write_files", writeFiles));

  const runcmd = doc.createNode(input.runcmd) as YAMLSeq;
  // One line per step: `- [curl, --fail, …]` reads like the command it runs.
  for (const item of runcmd.items) if (item instanceof YAMLSeq) item.flow = true;
  const runcmdPair = doc.createPair("runcmd", runcmd);
  (runcmdPair.key as Scalar).commentBefore = ` ${input.runcmdComment.split("\n").join("\n ")}`;
  root.add(runcmdPair);

  doc.contents = root;
  doc.commentBefore = ` ${input.headerComment.split("\n").join("\n ")}`;
  const text = doc.toString({ lineWidth: 0, minContentWidth: 0, indent: 2, indentSeq: true });
  return `#cloud-config\n${text}`;
}
