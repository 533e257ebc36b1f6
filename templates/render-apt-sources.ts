/**
 * apt sources (deb822) for Node.js LTS (NodeSource) and Tailscale, production only.
 * They are staged outside /etc/apt and installed by runcmd AFTER their signing keys are
 * downloaded: a source whose key is missing would make every `apt-get update` fail,
 * including the packages module that runs before runcmd.
 */
import { SUPPORTED_IMAGES, type SupportedImage } from "./host-vars.js";

export const APT_STAGING_DIR = "/usr/local/share/picortex/apt";
export const NODESOURCE_KEYRING = "/usr/share/keyrings/picortex-nodesource.asc";
export const TAILSCALE_KEYRING = "/usr/share/keyrings/tailscale-archive-keyring.gpg";
export const NODESOURCE_KEY_URL = "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key";

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
