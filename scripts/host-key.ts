/**
 * npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey
 *
 * Prints a fresh Ed25519 SSH host key (OpenSSH format, no passphrase) on stdout, for the
 * workspace stack: cloud-init installs it as the server's host key and every deploy
 * connection pins its public half, so the very first SSH connection is verified. Pipe it
 * straight into `pulumi config set --secret` (it never touches the disk or argv). The
 * public half goes to stderr, for your known_hosts.
 *
 *   --public-only <file>   print the public line of an existing private key file
 */
import { readFileSync } from "node:fs";
import { generateHostKey, hostKeyPublicLine } from "../components/ssh-keys.js";

const HELP = `Usage: npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey
       npx tsx scripts/host-key.ts --public-only <private key file>
Prints a new Ed25519 host key for the workspace host (stdout: private key; stderr: public line).
`;

function main(argv: string[]): number {
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv[0] === "--public-only") {
    if (!argv[1]) throw new Error("--public-only needs the private key file");
    process.stdout.write(hostKeyPublicLine(readFileSync(argv[1], "utf8")) + "\n");
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(HELP);
    return 2;
  }
  if (process.stdout.isTTY) {
    process.stderr.write("host-key: refusing to print a private key to a terminal; pipe it: npx tsx scripts/host-key.ts | pulumi config set --secret picortex:sshHostKey\n");
    return 2;
  }
  const key = generateHostKey("picortex-host");
  process.stdout.write(key.privateKey);
  process.stderr.write(`host-key: public half (also the stack output sshHostPublicKey after pulumi up):\n${key.publicKey}\n`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`host-key: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
