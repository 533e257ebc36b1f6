/**
 * Offline stand-ins installed into a booted server's root filesystem before its first
 * boot, so the production cloud-config (templates/render-host.ts, profile "production")
 * runs to `done` on a host with no internet, unchanged:
 *
 * | cloud-config step                                   | on this host                                         |
 * |-----------------------------------------------------|------------------------------------------------------|
 * | packages module (`apt-get update`, `install …`)     | /usr/local/sbin/apt-get: `update` fetches nothing; `install` checks each package is installed in the image (EMULATOR_IMAGE_PACKAGES), "installs" `nodejs` (node is provisioned at /usr/bin/node) and `tailscale` (the stand-in below); anything else goes to the real apt-get |
 * | `curl … <nodesource/tailscale signing key>`         | /usr/local/sbin/curl writes a marked placeholder naming the pinned fingerprint for those URLs only (STANDIN_SIGNING_KEYS); every other URL runs the real curl |
 * | pinned-key check (`gpg --show-keys --with-colons`)  | /usr/local/sbin/gpg shows a placeholder as one key with the fingerprint it names (the check itself runs unchanged); any other file or use runs the real gpg |
 * | `npm install --global … @anthropic-ai/claude-code@V`| /usr/local/sbin/npm checks the provisioned /usr/local/bin/claude; any other npm use fails (no npm offline) |
 * | `tailscale up --auth-key=file:… --hostname --advertise-tags [--ssh]` | the stand-in `tailscale` POSTs the key to the Tailscale emulator's join endpoint over the veth link (URL in /etc/picortex-emulator/tailscale.json); the emulator spends the key and registers the device; the tailnet IPv4 (100.64/10) is put on host0 and routed from the test machine |
 * | `tailscale ip -4` (picortex-listen-address)         | prints the joined address from /var/lib/tailscale-standin/state.json |
 * | tailscaled.service                                  | a oneshot that puts the joined address back on host0 at boot |
 * | a peer's source address                             | nftables source-NATs connections from host0 to the tailnet address to 100.127.255.254 (TAILNET_PEER), as a tailnet peer's would arrive (the runtime serves only loopback and tailnet sources) |
 * | /etc/fstab device entries at a reboot               | picortex-emulator-fstab-devices.service mounts them (systemd ignores fstab device entries in a container) |
 *
 * Why not the real tailscale/tailscaled (or headscale): the real daemon needs a TUN device
 * or userspace networking plus a control server speaking the Noise protocol (headscale);
 * building both from the Go proxy takes ~4 minutes per cold CI run and the nspawn guest
 * has no /dev/net/tun. The stand-in keeps the part the lifecycle depends on (key spent
 * once, expiry, tags, `<name>-1`, a reachable tailnet address) and says so in its output.
 */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { NODESOURCE_KEY_FINGERPRINT, NODESOURCE_KEY_URL, TAILSCALE_KEY_FINGERPRINT, tailscaleKeyUrl } from "../../../../templates/render-apt-sources.js";
import { SUPPORTED_IMAGES, type SupportedImage } from "../../../../templates/host-vars.js";

/** Debian packages the production cloud-config's `packages:` list needs beyond the e2e base image. */
export const EMULATOR_IMAGE_PACKAGES = ["build-essential", "gnupg", "nftables", "unattended-upgrades"];

export const STANDIN_DIR = "/usr/local/lib/picortex-emulator";
export const EMULATOR_CONFIG = "/etc/picortex-emulator/tailscale.json";
export const STANDIN_STATE = "/var/lib/tailscale-standin/state.json";

const APT_GET = `#!/bin/sh
# picortex emulator stand-in for apt-get on an offline test host (tests/engine/emulators/hetzner/host-standins.ts).
set -eu
# Options that take their value as the next argument (-o Acquire::Retries=5, -c FILE, -t REL, -a ARCH).
takes_value() { case "$1" in -o|-c|-t|-a|--option|--config-file|--target-release|--host-architecture) return 0 ;; *) return 1 ;; esac; }
sub=""
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  if takes_value "$a"; then skip=1; continue; fi
  case "$a" in -*) ;; *) sub="$a"; break ;; esac
done
case "$sub" in
  update)
    echo "apt-get (picortex emulator stand-in): offline host, nothing fetched"
    exit 0 ;;
  install)
    seen=0
    skip=0
    for a in "$@"; do
      if [ "$skip" = 1 ]; then skip=0; continue; fi
      if takes_value "$a"; then skip=1; continue; fi
      case "$a" in -*) continue ;; esac
      if [ "$seen" = 0 ]; then seen=1; continue; fi   # the word "install"
      pkg="\${a%%=*}"
      case "$pkg" in
        tailscale)
          install -m 0755 ${STANDIN_DIR}/tailscale /usr/bin/tailscale
          install -m 0755 ${STANDIN_DIR}/tailscaled /usr/sbin/tailscaled
          install -m 0644 ${STANDIN_DIR}/tailscaled.service /etc/systemd/system/tailscaled.service
          systemctl daemon-reload
          systemctl enable --now tailscaled.service
          echo "apt-get (stand-in): installed the emulator's tailscale stand-in" ;;
        nodejs)
          [ -x /usr/bin/node ] || { echo "apt-get (stand-in): /usr/bin/node is not provisioned" >&2; exit 100; }
          echo "apt-get (stand-in): nodejs is provisioned at /usr/bin/node ($(/usr/bin/node --version))" ;;
        *)
          if ! dpkg-query -W -f='\${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            echo "E: apt-get (picortex emulator stand-in): package $pkg is not in the offline test image; add it to EMULATOR_IMAGE_PACKAGES" >&2
            exit 100
          fi ;;
      esac
    done
    exit 0 ;;
  *) exec /usr/bin/apt-get "$@" ;;
esac
`;

/**
 * The signing keys the production cloud-config downloads, by URL, with the fingerprint it
 * pins (templates/render-apt-sources.ts): the curl stand-in answers exactly these URLs.
 */
export const STANDIN_SIGNING_KEYS: ReadonlyArray<{ url: string; fingerprint: string }> = [
  { url: NODESOURCE_KEY_URL, fingerprint: NODESOURCE_KEY_FINGERPRINT },
  ...[...new Set((Object.keys(SUPPORTED_IMAGES) as SupportedImage[]).map((i) => tailscaleKeyUrl(i)))].map((url) => ({ url, fingerprint: TAILSCALE_KEY_FINGERPRINT })),
];

/** First line of a placeholder keyring the curl stand-in writes; the gpg stand-in recognises it. */
export const PLACEHOLDER_KEY_MARKER = "# picortex-emulator-placeholder-signing-key";

const CURL = `#!/bin/sh
# picortex emulator stand-in for curl: only the apt signing-key downloads of the production
# cloud-config are answered offline, with a marked placeholder naming the pinned fingerprint
# (the gpg stand-in shows it as that one key); every other URL runs the real curl.
out=""
fpr=""
url=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--output" ] || [ "$prev" = "-o" ]; then out="$a"; fi
  case "$a" in
${STANDIN_SIGNING_KEYS.map((k) => `    '${k.url}') url="$a"; fpr=${k.fingerprint} ;;`).join("\n")}
  esac
  prev="$a"
done
if [ -n "$url" ] && [ -n "$out" ]; then
  printf '%s fingerprint=%s url=%s\\n' '${PLACEHOLDER_KEY_MARKER}' "$fpr" "$url" > "$out"
  echo "curl (picortex emulator stand-in): offline host, wrote a placeholder for $url" >&2
  exit 0
fi
exec /usr/bin/curl "$@"
`;

/**
 * gpg stand-in: \`gpg … --show-keys --with-colons FILE\` on a placeholder written by the curl
 * stand-in prints one primary key with the fingerprint the placeholder names, in gpg's
 * colon format, so the cloud-config's pinned-key check (VERIFY_KEY_SCRIPT: exactly one
 * \`pub:\`, its \`fpr:\` field 10 equal to the pin) runs unchanged and still fails on a
 * wrong fingerprint or a non-placeholder file. Every other use runs the real gpg.
 */
const GPG = `#!/bin/sh
# picortex emulator stand-in for gpg (tests/engine/emulators/hetzner/host-standins.ts).
show=0
file=""
for a in "$@"; do
  case "$a" in --show-keys) show=1 ;; -*) ;; *) file="$a" ;; esac
done
if [ "$show" = 1 ] && [ -n "$file" ] && [ -f "$file" ] && head -n 1 "$file" | grep -q '^${PLACEHOLDER_KEY_MARKER} '; then
  fpr="$(head -n 1 "$file" | sed -n 's/.* fingerprint=\\([0-9A-F]*\\) .*/\\1/p')"
  keyid="$(printf '%s' "$fpr" | cut -c25-40)"
  echo "pub:-:4096:1:$keyid:1600000000:::-:::scSC::::::23::0:"
  echo "fpr:::::::::$fpr:"
  echo "uid:-::::1600000000::0::picortex emulator placeholder for the pinned key::::::::::0:"
  exit 0
fi
exec /usr/bin/gpg "$@"
`;

const NPM = `#!/bin/sh
# picortex emulator stand-in for npm: only the global Claude Code install is answered (the binary is provisioned).
for a in "$@"; do
  case "$a" in @anthropic-ai/claude-code@*)
    if [ -x /usr/local/bin/claude ]; then echo "npm (stand-in): $a is provisioned at /usr/local/bin/claude"; exit 0; fi
    echo "npm (stand-in): /usr/local/bin/claude is not provisioned" >&2; exit 1 ;;
  esac
done
echo "npm (picortex emulator stand-in): no npm on this offline test host ($*)" >&2
exit 1
`;

const TAILSCALE = `#!/usr/bin/python3
"""picortex emulator stand-in for the tailscale CLI (tests/engine/emulators/hetzner/host-standins.ts).

Supports: up (--auth-key/--authkey[=file:PATH], --hostname, --advertise-tags, --ssh), ip [-4|-6],
status [--json], version. Joining spends the key through the Tailscale emulator's API."""
import json, os, subprocess, sys, urllib.request, urllib.error

CONFIG = "${EMULATOR_CONFIG}"
STATE = "${STANDIN_STATE}"

def load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None

def opt(args, *names):
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a[len(n) + 1:]
    return None

def up(args):
    key = opt(args, "--auth-key", "--authkey")
    if not key:
        sys.exit("tailscale (stand-in): up needs --auth-key")
    if key.startswith("file:"):
        with open(key[5:]) as f:
            key = f.read().strip()
    hostname = opt(args, "--hostname") or os.uname().nodename
    tags = [t for t in (opt(args, "--advertise-tags") or "").split(",") if t]
    with open(CONFIG) as f:
        url = json.load(f)["joinUrl"]
    body = json.dumps({"authKey": key, "hostname": hostname, "tags": tags, "ssh": "--ssh" in args, "os": "linux"}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            res = json.load(r)
    except urllib.error.HTTPError as e:
        msg = e.read().decode(errors="replace")
        try:
            msg = json.loads(msg)["message"]
        except Exception:
            pass
        sys.exit("backend error: " + msg)
    dev = res["device"]
    state = {"hostname": hostname, "name": res["shortName"], "dnsName": res["dnsName"], "addresses": dev["addresses"], "id": dev["id"], "tags": dev["tags"], "ssh": dev["sshEnabled"]}
    os.makedirs(os.path.dirname(STATE), mode=0o755, exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.chmod(tmp, 0o644)
    os.replace(tmp, STATE)
    subprocess.run(["ip", "addr", "replace", dev["addresses"][0] + "/32", "dev", "host0"], check=True)
    subprocess.run(["${STANDIN_DIR}/tailnet-peer", dev["addresses"][0]], check=True)
    print("tailscale (picortex emulator stand-in): joined as %s (%s)" % (res["dnsName"], dev["addresses"][0]))

def main():
    args = sys.argv[1:]
    cmd = args[0] if args else "status"
    st = load_state()
    if cmd == "up":
        up(args[1:])
    elif cmd == "ip":
        if not st:
            sys.exit("tailscale (stand-in): not logged in")
        v6 = "-6" in args
        for a in st["addresses"]:
            if (":" in a) == v6 or len(args) == 1:
                print(a)
    elif cmd == "status":
        if "--json" in args:
            print(json.dumps({"BackendState": "Running" if st else "NeedsLogin", "Self": None if not st else {"HostName": st["hostname"], "DNSName": st["dnsName"], "TailscaleIPs": st["addresses"], "Tags": st["tags"]}}))
        elif not st:
            print("Logged out."); sys.exit(1)
        else:
            print("%s  %s  tagged-devices  linux  -" % (st["addresses"][0], st["name"]))
    elif cmd == "version":
        print("1.102.5-picortex-emulator-standin")
    else:
        sys.exit("tailscale (picortex emulator stand-in): unsupported command " + cmd)

main()
`;

const TAILSCALED = `#!/bin/sh
# picortex emulator stand-in for tailscaled: restores the joined tailnet address on host0 at boot.
set -eu
if [ -f ${STANDIN_STATE} ]; then
  addr="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addresses"][0])' ${STANDIN_STATE})"
  ip addr replace "$addr/32" dev host0
  ${STANDIN_DIR}/tailnet-peer "$addr"
fi
`;

/**
 * On a real tailnet a peer's packets arrive with the peer's tailnet address as their
 * source; here the test machine reaches the tailnet address over the veth, from its veth
 * address. The runtime serves only loopback and tailnet sources on its wildcard socket
 * (issue 13, port squatting), so connections from host0 to the tailnet address are
 * source-NATed to TAILNET_PEER (a 100.64/10 address no device gets), as a peer's would be.
 */
export const TAILNET_PEER = "100.127.255.254";
const TAILNET_PEER_SCRIPT = `#!/bin/sh
# picortex emulator: connections from host0 to this node's tailnet address come from a tailnet peer address.
set -eu
# The replies' route (on-link: conntrack turns them back into the veth address on the way out).
ip route replace ${TAILNET_PEER}/32 dev host0
nft delete table ip picortex_tailnet_peer 2>/dev/null || true
nft -f - <<NFT
table ip picortex_tailnet_peer {
  chain input {
    type nat hook input priority 100; policy accept;
    iifname "host0" ip daddr $1 snat to ${TAILNET_PEER}
  }
}
NFT
`;

const TAILSCALED_UNIT = `[Unit]
Description=Tailscale node agent (picortex emulator stand-in)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/tailscaled

[Install]
WantedBy=multi-user.target
`;

/**
 * systemd-fstab-generator skips fstab entries for block devices inside a container
 * ("Running in a container, ignoring fstab device entry"), so the data volume the
 * cloud-config put in /etc/fstab would not be mounted at a reboot, as it is on a real
 * server. This unit does that one thing before the local mounts (the bind mounts that
 * depend on it) run.
 */
const FSTAB_DEVICES_UNIT = `[Unit]
Description=Mount fstab block-device entries (picortex emulator: systemd skips them in a container)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=local-fs-pre.target
Wants=local-fs-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${STANDIN_DIR}/mount-fstab-devices

[Install]
WantedBy=local-fs.target
`;

const MOUNT_FSTAB_DEVICES = `#!/bin/sh
# picortex emulator: mount /etc/fstab entries whose device is /dev/disk/by-id/… (systemd skips them in a container).
awk '$1 ~ /^\\/dev\\/disk\\/by-id\\// && $2 != "none" { print $2 }' /etc/fstab | while read -r m; do
  mountpoint -q "$m" || mount "$m" || echo "cannot mount $m" >&2
done
exit 0
`;

function put(rootDir: string, path: string, content: string, mode: number): void {
  const target = join(rootDir, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, content);
  chmodSync(target, mode);
}

/** Installs the stand-ins into an extracted (not yet booted) root filesystem. */
export function installStandins(rootDir: string): void {
  put(rootDir, "/usr/local/sbin/apt-get", APT_GET, 0o755);
  put(rootDir, "/usr/local/sbin/curl", CURL, 0o755);
  put(rootDir, "/usr/local/sbin/gpg", GPG, 0o755);
  put(rootDir, "/usr/local/sbin/npm", NPM, 0o755);
  put(rootDir, `${STANDIN_DIR}/tailscale`, TAILSCALE, 0o755);
  put(rootDir, `${STANDIN_DIR}/tailscaled`, TAILSCALED, 0o755);
  put(rootDir, `${STANDIN_DIR}/tailnet-peer`, TAILNET_PEER_SCRIPT, 0o755);
  put(rootDir, `${STANDIN_DIR}/tailscaled.service`, TAILSCALED_UNIT, 0o644);
  put(rootDir, `${STANDIN_DIR}/mount-fstab-devices`, MOUNT_FSTAB_DEVICES, 0o755);
  put(rootDir, "/etc/systemd/system/picortex-emulator-fstab-devices.service", FSTAB_DEVICES_UNIT, 0o644);
  const wants = join(rootDir, "etc/systemd/system/local-fs.target.wants");
  mkdirSync(wants, { recursive: true });
  symlinkSync("/etc/systemd/system/picortex-emulator-fstab-devices.service", join(wants, "picortex-emulator-fstab-devices.service"));
}

/** Tells the stand-in `tailscale up` where to join (rewritten after every boot). */
export function writeEmulatorConfig(rootDir: string, joinUrl: string | null): void {
  put(rootDir, EMULATOR_CONFIG, JSON.stringify({ joinUrl }) + "\n", 0o644);
}
