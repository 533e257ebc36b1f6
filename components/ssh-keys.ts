/**
 * SSH key handling for the workspace stack, pure and offline (node:crypto only):
 *
 * - `publicKeyOfPrivateKey`: the public half of an OpenSSH private key, read from the
 *   key file's own header (present even in passphrase-protected keys), or from a PEM
 *   RSA/Ed25519 key through node:crypto. The stack checks that picortex:sshPublicKey is
 *   that key (issue 21 item 6): a mismatch used to surface only after the host was up.
 * - `generateHostKey`: a fresh Ed25519 host key in OpenSSH format. The stack injects it
 *   through cloud-init `ssh_keys` and pins its public half in every deploy connection
 *   (`hostKey`), so the first connection is already verified (item 7).
 *
 * Errors never quote key material: only types, fingerprints and what to run.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";

export class SshKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SshKeyError";
  }
}

const MAGIC = "openssh-key-v1\0";

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    if (this.off + 4 > this.buf.length) throw new SshKeyError("the OpenSSH private key is truncated");
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.off + n > this.buf.length) throw new SshKeyError("the OpenSSH private key is truncated");
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  string(): string {
    return this.bytes().toString("latin1");
  }
}

const sshString = (b: Buffer | string): Buffer => {
  const body = typeof b === "string" ? Buffer.from(b, "latin1") : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
/** SSH mpint from a big-endian unsigned magnitude. */
const mpint = (b: Buffer): Buffer => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return sshString(v);
};

export interface PrivateKeyInfo {
  /** `<type> <base64>` (no comment): the authorized_keys form of the public half. */
  publicKey: string;
  type: string;
  /** Protected by a passphrase (then picortex:adminPrivateKeyPassword is needed). */
  encrypted: boolean;
  fingerprint: string;
}

/** `SHA256:…` as `ssh-keygen -l` prints it. */
export function fingerprint(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1] ?? "";
  return "SHA256:" + createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "");
}

/** `<type> <base64>` of a public key line, without its comment, for comparisons. */
export function publicKeyCore(line: string): string {
  const [type, blob] = line.trim().split(/\s+/);
  return `${type ?? ""} ${blob ?? ""}`;
}

export function publicKeyOfPrivateKey(text: string, what = "the private key"): PrivateKeyInfo {
  const pem = text.trim();
  const m = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n-----END \1-----$/.exec(pem);
  if (!m) {
    if (/^(ssh-|ecdsa-)/.test(pem)) throw new SshKeyError(`${what} is a PUBLIC key line; give the private key file (e.g. < ~/.ssh/id_ed25519)`);
    throw new SshKeyError(`${what} is not a PEM/OpenSSH private key (it must start with "-----BEGIN OPENSSH PRIVATE KEY-----"): set it from the file, e.g. pulumi config set --secret picortex:adminPrivateKey < ~/.ssh/id_ed25519`);
  }
  const label = m[1]!;
  if (label === "OPENSSH PRIVATE KEY") {
    const raw = Buffer.from(m[2]!.replace(/\s+/g, ""), "base64");
    if (raw.subarray(0, MAGIC.length).toString("latin1") !== MAGIC) throw new SshKeyError(`${what} is damaged: no openssh-key-v1 header`);
    const r = new Reader(raw.subarray(MAGIC.length));
    const cipher = r.string();
    r.string(); // kdf name
    r.bytes(); // kdf options
    const count = r.u32();
    if (count !== 1) throw new SshKeyError(`${what} holds ${count} keys; give a file with exactly one`);
    const blob = r.bytes();
    const type = new Reader(blob).string();
    const publicKey = `${type} ${blob.toString("base64")}`;
    return { publicKey, type, encrypted: cipher !== "none", fingerprint: fingerprint(publicKey) };
  }
  if (/ENCRYPTED/.test(label) || /Proc-Type: 4,ENCRYPTED/.test(m[2]!)) {
    throw new SshKeyError(`${what} is an encrypted PEM key; convert it to the OpenSSH format first: ssh-keygen -p -f <file> (keeps the passphrase), then set picortex:adminPrivateKeyPassword`);
  }
  let jwk: { kty?: string; crv?: string; x?: string; n?: string; e?: string };
  try {
    jwk = createPublicKey(createPrivateKey(pem)).export({ format: "jwk" }) as typeof jwk;
  } catch (err) {
    throw new SshKeyError(`${what} cannot be parsed (${(err as Error).message.split("\n")[0]}); convert it with ssh-keygen -p -f <file>`);
  }
  let blob: Buffer;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") blob = Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.from(jwk.x!, "base64url"))]);
  else if (jwk.kty === "RSA") blob = Buffer.concat([sshString("ssh-rsa"), mpint(Buffer.from(jwk.e!, "base64url")), mpint(Buffer.from(jwk.n!, "base64url"))]);
  else throw new SshKeyError(`${what} is a ${jwk.kty}/${jwk.crv ?? "?"} PEM key; convert it to the OpenSSH format with ssh-keygen -p -f <file>, or use ssh-ed25519`);
  const type = new Reader(blob).string();
  const publicKey = `${type} ${blob.toString("base64")}`;
  return { publicKey, type, encrypted: false, fingerprint: fingerprint(publicKey) };
}

export interface HostKeyPair {
  /** OpenSSH-format private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… <comment>` */
  publicKey: string;
}

/** A fresh Ed25519 key pair in the formats sshd (cloud-init ssh_keys) and ssh clients read. */
export function generateHostKey(comment = "picortex-host"): HostKeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" }) as { d: string; x: string };
  return openSshEd25519(Buffer.from(jwk.d, "base64url"), Buffer.from(jwk.x, "base64url"), comment, randomBytes(4).readUInt32BE(0));
}

/** A deterministic Ed25519 key from a 32-byte seed (tests and fixtures). */
export function ed25519FromSeed(seed: Buffer, comment: string): HostKeyPair {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const jwk = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "jwk" }) as { x: string };
  return openSshEd25519(seed, Buffer.from(jwk.x, "base64url"), comment, seed.readUInt32BE(0));
}

/** The openssh-key-v1 encoding of an unencrypted Ed25519 key (PROTOCOL.key in OpenSSH). */
export function openSshEd25519(seed: Buffer, pub: Buffer, comment: string, checkint: number): HostKeyPair {
  if (seed.length !== 32 || pub.length !== 32) throw new SshKeyError("an Ed25519 key has a 32-byte seed and a 32-byte public key");
  const pubBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  let priv = Buffer.concat([u32(checkint), u32(checkint), sshString("ssh-ed25519"), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from(MAGIC, "latin1"), sshString("none"), sshString("none"), sshString(""), u32(1), sshString(pubBlob), sshString(priv)]);
  const b64 = body.toString("base64").replace(/(.{70})/g, "$1\n").replace(/\n$/, "");
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${pubBlob.toString("base64")} ${comment}`,
  };
}

/**
 * Validates a host key for cloud-init `ssh_keys`: an unencrypted OpenSSH Ed25519 private
 * key (sshd reads it as /etc/ssh/ssh_host_ed25519_key). Returns its public line.
 */
export function hostKeyPublicLine(privateKey: string): string {
  const info = publicKeyOfPrivateKey(privateKey, "picortex:sshHostKey");
  if (info.type !== "ssh-ed25519") throw new SshKeyError(`picortex:sshHostKey must be an ssh-ed25519 key, not ${info.type}: generate one with npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey`);
  if (info.encrypted) throw new SshKeyError("picortex:sshHostKey must not have a passphrase (sshd reads it unattended): generate one with npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey");
  if (!privateKey.trim().startsWith("-----BEGIN OPENSSH PRIVATE KEY-----")) throw new SshKeyError("picortex:sshHostKey must be in the OpenSSH format: generate one with npx tsx scripts/host-key.ts");
  return info.publicKey;
}
