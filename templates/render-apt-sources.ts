/**
 * apt sources (deb822) for Node.js LTS (NodeSource) and Tailscale, production only.
 * They are staged outside /etc/apt and installed by runcmd AFTER their signing keys are
 * downloaded: a source whose key is missing would make every `apt-get update` fail,
 * including the packages module that runs before runcmd.
 */
import { SUPPORTED_IMAGES, type SupportedImage } from "./host-vars.js";
import { NODESOURCE_KEYRING, TAILSCALE_KEYRING } from "../agent-runtime/host/contract.js";

export const NODESOURCE_KEY_URL = "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key";

/**
 * The repository signing keys' fingerprints, pinned: a key fetched over HTTPS is trusted
 * only if it is exactly this one key (issue 21 item 20). Published by NodeSource and
 * Tailscale, and the same in many independent pinned setups.
 */
export const NODESOURCE_KEY_FINGERPRINT = "6F71F525282841EEDAF851B42F59B5F99B1BE0B4";
export const TAILSCALE_KEY_FINGERPRINT = "2596A99EAAB33821893C0A79458CA832957F5868";

/**
 * Checks that keyring file "$1" holds exactly one primary key, with fingerprint "$2";
 * otherwise deletes the file and fails (so apt never trusts it). Fixed text; the file and
 * fingerprint arrive as arguments. Uses a throwaway gpg home.
 */
export const VERIFY_KEY_SCRIPT = [
  "set -eu",
  'h=$(mktemp -d); trap \'rm -rf "$h"\' EXIT',
  'out=$(gpg --homedir "$h" --batch --show-keys --with-colons "$1" 2>/dev/null || true)',
  'n=$(printf "%s\\n" "$out" | grep -c "^pub:" || true)',
  "got=$(printf \"%s\\n\" \"$out\" | awk -F: '/^pub:/ { p = 1; next } p && /^fpr:/ { print $10; exit }')",
  'if [ "$n" != 1 ] || [ "$got" != "$2" ]; then rm -f "$1"; echo "$1: not the pinned signing key $2 ($n keys, first $got)" >&2; exit 1; fi',
].join("; ");

export function tailscaleKeyUrl(image: SupportedImage): string {
  const { distro, codename } = SUPPORTED_IMAGES[image];
  return `https://pkgs.tailscale.com/stable/${distro}/${codename}.noarmor.gpg`;
}

export function renderNodesourceSource(nodeMajor: number): string {
  return ["Types: deb", `URIs: https://deb.nodesource.com/node_${nodeMajor}.x`, "Suites: nodistro", "Components: main", `Signed-By: ${NODESOURCE_KEYRING}`, ""].join("\n");
}

export function renderTailscaleSource(image: SupportedImage): string {
  const { distro, codename } = SUPPORTED_IMAGES[image];
  return ["Types: deb", `URIs: https://pkgs.tailscale.com/stable/${distro}`, `Suites: ${codename}`, "Components: main", `Signed-By: ${TAILSCALE_KEYRING}`, ""].join("\n");
}
