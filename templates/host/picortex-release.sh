#!/usr/bin/env bash
# picortex-release: the ONE privileged entry point for deploying the picortex runtime.
#
# Installed root:root 0755 as /usr/local/sbin/picortex-release. The admin account
# (member of picortex-ops, no general sudo) may run it through sudoers with anchored
# arguments only:
#   picortex-release ^(install|activate|rollback|status|uninstall)( [a-f0-9]{12,64})?$
# It re-validates its arguments itself, so a wider sudoers rule would still be safe.
#
#   install <hash>    unpack ~<admin>/incoming/<hash>.tar.gz (read AS the admin, so a
#                     symlink there cannot make root read other files), verify that the
#                     uncompressed tar hashes to <hash>, check the shipped native modules
#                     load (rebuild offline, then `npm ci`, as fallbacks; never as root:
#                     as picortex-build in a PID namespace that dies with the build),
#                     and rename it into /opt/picortex/releases/<hash>. Idempotent.
#   activate <hash>   atomically point /opt/picortex/current at the release (symlink to a
#                     temporary name + rename), restart picortex-runtime.service and poll
#                     /healthz (an answer counts only when every listener on the runtime's
#                     ports is held by the unit's MainPID: health_ok below); on failure
#                     switch back to the previous release and exit 1.
#                     Before restarting, it installs ~<admin>/incoming/runtime-settings.json
#                     if RuntimeDeployment uploaded one (validated, then deleted):
#                     runtimeConfig → /etc/picortex/runtime.json (root:picortex 0640),
#                     anthropicApiKey → /etc/picortex/credentials/anthropic-api-key (root 0600),
#                     apiToken → /var/lib/picortex/api-token (picortex 0600),
#                     bridges → the `bridges` section of runtime.json, with telegramBotToken and
#                     webhookSecret → /etc/picortex/credentials/bridges/{telegram-bot-token,
#                     webhook-secret} (root 0600; absent ones removed).
#                     Every activate also makes sure the portal agent has its gateway
#                     token (agent-runtime/host/agent-key.ts): created once, random, in
#                     /etc/picortex/credentials/agent-token (root 0600; the agent unit loads
#                     it with LoadCredential=), and only its SHA-256 hex written to
#                     /var/lib/picortex/agent-token.sha256 (picortex 0600) for the gateway.
#                     When the token is new, picortex-agent.service is restarted (at the end) to load it.
#
# Root never writes through a name a less privileged user controls: files in the runtime
# user's state dir are created O_EXCL|O_NOFOLLOW under a random name, chowned/chmodded on
# the descriptor and renamed; the lock lives in root's /opt/picortex, not /run/lock; the
# build user's processes are all dead before root chowns the staging tree back
# (tests/deploy/release-privilege.test.ts attacks each of these).
#   rollback [hash]   activate the previous release (or <hash>), with the same health check.
#   status            one JSON object: current, previous, installed releases, unit state, health.
#   uninstall [hash]  with no hash or the current hash: stop and disable the unit and remove
#                     every release and symlink. With another hash: remove only that
#                     release (kept if it is the rollback target). The Anthropic key and
#                     agent token files go too; data in /var/lib/picortex (chats, brain) is left alone:
#                     destroying the server removes it.
#
# Exit codes: 0 ok, 1 operation failed (rolled back where possible), 2 usage error.
set -euo pipefail
umask 022

readonly UNIT="picortex-runtime.service"

die() { echo "picortex-release: $*" >&2; exit 1; }
usage() {
  echo "usage: picortex-release install|activate <hash> | rollback [hash] | status | uninstall [hash]" >&2
  echo "  <hash> is the release's content hash: 12-64 lowercase hex characters" >&2
  exit 2
}
log() { echo "picortex-release: $*" >&2; }

# --- Test seams -------------------------------------------------------------------
# Tests run this script for real in a scratch root. The overrides below are honoured
# only when root runs the script directly: under sudo (how the admin runs it) they
# are ignored, and sudo's env_reset strips them anyway.
if [[ -n "${PICORTEX_RELEASE_TEST_ROOT:-}" && -z "${SUDO_USER:-}" && -z "${SUDO_COMMAND:-}" ]]; then
  ROOT="$PICORTEX_RELEASE_TEST_ROOT"
  SYSTEMCTL="${PICORTEX_RELEASE_SYSTEMCTL:-systemctl}"
  HEALTH_URL="${PICORTEX_RELEASE_HEALTH_URL:-http://127.0.0.1:7420/healthz}"
  HEALTH_TRIES="${PICORTEX_RELEASE_HEALTH_TRIES:-30}"
  RUNTIME_USER="${PICORTEX_RELEASE_RUNTIME_USER:-picortex}"
  BUILD_USER="${PICORTEX_RELEASE_BUILD_USER:-picortex-build}"
  INCOMING_DIR="${PICORTEX_RELEASE_INCOMING:-$ROOT/incoming}"
else
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  ROOT=""
  SYSTEMCTL="systemctl"
  HEALTH_URL="http://127.0.0.1:7420/healthz"
  HEALTH_TRIES=30
  RUNTIME_USER="picortex"
  # Its own account (agent-runtime/host/contract.ts BUILD_USER), running nothing else.
  BUILD_USER="picortex-build"
  INCOMING_DIR=""
fi
readonly BASE="$ROOT/opt/picortex"
readonly RELEASES="$BASE/releases"
readonly CURRENT="$BASE/current"
readonly PREVIOUS="$BASE/previous"
# In a root-owned directory: /run/lock is world-writable, and a name planted there
# (a symlink to /etc/passwd) would be truncated by `exec 9>`.
readonly LOCK_FILE="$BASE/.release.lock"
readonly ETC_DIR="$ROOT/etc/picortex"
readonly DATA_DIR="$ROOT/var/lib/picortex"

# --- Argument validation (sudoers already anchors these; checked again here) -------
[[ $# -ge 1 && $# -le 2 ]] || usage
CMD="$1"
HASH="${2:-}"
case "$CMD" in
  install|activate) [[ $# -eq 2 ]] || usage ;;
  rollback|uninstall) ;;
  status) [[ $# -eq 1 ]] || usage ;;
  *) usage ;;
esac
if [[ -n "$HASH" && ! "$HASH" =~ ^[a-f0-9]{12,64}$ ]]; then
  echo "picortex-release: invalid release hash (expected 12-64 lowercase hex characters)" >&2
  exit 2
fi
[[ "$(id -u)" -eq 0 ]] || die "must run as root (the admin runs it as: sudo -n /usr/local/sbin/picortex-release $CMD ...)"

mkdir -p "$RELEASES"
# Every directory root writes in below /opt/picortex must be root's own: refuse to run
# over a tree someone else could have prepared.
for d in "$BASE" "$RELEASES"; do
  [[ -d "$d" && ! -L "$d" && "$(stat -c %u "$d")" == 0 ]] || die "$d must be a directory owned by root"
done
# One changing operation at a time: Pulumi, CI and a human may all call this. `status`
# only reads (every change is a rename), so it never waits behind a long install.
if [[ "$CMD" != status ]]; then
  [[ ! -L "$LOCK_FILE" ]] || rm -f -- "$LOCK_FILE"
  exec 9>>"$LOCK_FILE"
  flock -w 600 9 || die "another picortex-release is still running (lock $LOCK_FILE)"

  # Trigger: leftovers of a run that was killed (kill -9, power loss) mid-way.
  # Why: we hold the lock, so no other run can own them; the live state (current,
  # previous, releases/<hash>) only ever changes by rename, so it is always consistent.
  # Outcome: remove the half-built staging trees and temporary symlinks.
  rm -rf -- "$RELEASES"/.staging-* "$RELEASES"/.work-*
  rm -f -- "$CURRENT".tmp-* "$PREVIOUS".tmp-*
fi

# --- Helpers -----------------------------------------------------------------------
link_target_hash() { # prints the release hash a symlink points at, or nothing
  local t
  t="$(readlink "$1" 2>/dev/null || true)"
  [[ -n "$t" ]] && basename "$t"
  return 0
}

# Atomic symlink replacement: create under a temporary name, then rename(2) over the old one.
swap_link() { # swap_link <link> <target>
  local tmp="$1.tmp-$$"
  ln -sfn "$2" "$tmp"
  mv -Tf "$tmp" "$1"
}

# Healthy = /healthz answers {"ok":true} AND the answer can only have come from the
# runtime: every socket listening on the health port (any address, IPv4 or IPv6) is one
# the unit's main process holds, and so is every listener on each other port it listens
# on (the key gateway's). A squatter ([::1]:7420, the wildcard, a fake {"ok":true} server
# started while the runtime restarts) fails the gate, with its address and owner named.
# ss -p names every process holding each listener (with socket activation: PID 1 too).
health_ok() {
  local pid port p l
  pid="$("$SYSTEMCTL" show -p MainPID --value "$UNIT" 2>/dev/null 9>&- || true)"
  [[ "$pid" =~ ^[1-9][0-9]*$ ]] || return 1
  # Node is always on the host (the runtime needs it); curl may not be.
  node -e '
    const url = process.argv[1];
    fetch(url, { signal: AbortSignal.timeout(3000) })
      .then(async (r) => { const b = await r.json(); process.exit(r.ok && b && b.ok === true ? 0 : 1); })
      .catch(() => process.exit(1));
  ' "$HEALTH_URL" || return 1
  port="${HEALTH_URL##*:}"; port="${port%%/*}"
  # Each port the runtime's process listens on (the health port must be one) has no
  # listener of another process, on any address.
  for p in $(ss -Hltnp | awk -v p="pid=$pid," 'index($0, p) { sub(/.*:/, "", $4); print $4 }' | sort -u); do
    [[ "$p" != "$port" ]] || port=""
    l="$(ss -Hltnp "sport = :$p" | grep -v "pid=$pid," || true)"
    [[ -z "$l" ]] || { log "health gate: not the runtime's: $l"; return 1; }
  done
  [[ -z "$port" ]] || { log "health gate: runtime (pid $pid) not on port $port"; return 1; }
}

# Healthy = three answers in a row, a second apart: a runtime that answers once and then
# crashes (a bad config read after listen, a native module loaded lazily) must not pass.
readonly HEALTHY_STREAK=3
wait_healthy() {
  local i streak=0
  for ((i = 1; i <= HEALTH_TRIES + HEALTHY_STREAK - 1; i++)); do
    if health_ok; then
      streak=$((streak + 1))
      [[ $streak -ge $HEALTHY_STREAK ]] && return 0
    else
      streak=0
    fi
    sleep 1
  done
  return 1
}

# fd 9 holds the lock: children must not inherit it, or a long-lived process would keep it.
restart_unit() {
  "$SYSTEMCTL" enable --quiet "$UNIT" >/dev/null 2>&1 9>&- || true
  "$SYSTEMCTL" restart "$UNIT" 9>&-
}

# Points current at <hash>, restarts, checks health. Returns 1 (after logging) on failure.
switch_to() { # switch_to <hash>
  swap_link "$CURRENT" "$RELEASES/$1"
  if ! restart_unit; then
    log "restart of $UNIT failed with release $1"
    return 1
  fi
  if ! wait_healthy; then
    log "release $1 did not become healthy at $HEALTH_URL after $HEALTH_TRIES tries"
    return 1
  fi
  return 0
}

# Runs a command as the unprivileged build user with a private HOME, in a PID namespace
# of its own: when the command ends, the kernel kills every process it left behind
# (--kill-child), so nothing of the build user still holds the staging tree open, or
# races a swap of a file for a symlink, when root takes the tree back with chown -R.
as_build_user() {
  local home="$1"; shift
  unshare --pid --fork --kill-child -- \
    runuser -u "$BUILD_USER" -- env -i PATH="$PATH" HOME="$home" npm_config_cache="$home/.npm" \
    npm_config_update_notifier=false "$@" 9>&-
}

# Sets INCOMING and READER: the admin's upload directory and how to read from it (as the
# admin, never as root, so a symlink there cannot make root read other files).
resolve_incoming() {
  READER=()
  if [[ -n "$INCOMING_DIR" ]]; then INCOMING="$INCOMING_DIR"; return 0; fi
  local admin="${SUDO_USER:-root}" admin_home
  admin_home="$(getent passwd "$admin" | cut -d: -f6)"
  [[ -n "$admin_home" ]] || die "cannot find the home directory of $admin"
  INCOMING="$admin_home/incoming"
  if [[ "$admin" != root ]]; then READER=(runuser -u "$admin" --); fi
  return 0
}

# Sets RT_UID/RT_GID and makes the directories root writes secrets into: /etc/picortex
# (root 0755), its credentials dir (root 0700) and the runtime user's state dir.
prepare_state_dirs() {
  RT_UID="$(id -u "$RUNTIME_USER")" || die "runtime user $RUNTIME_USER does not exist"
  RT_GID="$(id -g "$RUNTIME_USER")"
  mkdir -p "$ETC_DIR/credentials/bridges"
  chmod 0755 "$ETC_DIR"
  chmod 0700 "$ETC_DIR/credentials" "$ETC_DIR/credentials/bridges"
  # The state dir belongs to the runtime user (0700: nobody else reads its state). Made
  # here only if missing; its parent is root's, so the name itself cannot be swapped.
  if [[ ! -e "$DATA_DIR" && ! -L "$DATA_DIR" ]]; then
    install -d -m 0700 -o "$RT_UID" -g "$RT_GID" -- "$DATA_DIR"
  fi
  [[ -d "$DATA_DIR" && ! -L "$DATA_DIR" ]] || die "$DATA_DIR must be a directory"
}

# The one way root writes a file (JavaScript, prepended to the programs below): put(path,
# text, mode, uid, gid). Root writes here into directories a less privileged user may
# control (the state dir belongs to the runtime user). So: a random name created with
# O_EXCL|O_NOFOLLOW (a planted name or link fails the open instead of being followed),
# owner and mode set on the open descriptor, never by path; then rename(2), which
# replaces a name and never follows a link; then fsync of the directory. Whatever the
# owner swaps in meanwhile, root writes only the inode it created.
readonly PUT_JS='
const fs = require("node:fs"), crypto = require("node:crypto");
const fail = (m) => { console.error("picortex-release: " + m); process.exit(1); };
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const put = (path, text, mode, u, g) => {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (!fs.lstatSync(dir).isDirectory()) fail(dir + " is not a directory");
  for (let attempt = 0; ; attempt++) {
    const tmp = dir + "/.picortex-release-" + crypto.randomBytes(12).toString("hex");
    let fd;
    try {
      fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (e) {
      if (e.code === "EEXIST" && attempt < 8) continue;
      throw e;
    }
    try {
      fs.fchmodSync(fd, mode);
      fs.fchownSync(fd, u, g);
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try { fs.renameSync(tmp, path); } catch (e) { fs.rmSync(tmp, { force: true }); throw e; }
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | O_NOFOLLOW);
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
    return;
  }
};
'

# Installs runtime-settings.json from the upload directory, if present.
install_settings() {
  resolve_incoming
  local src="$INCOMING/runtime-settings.json"
  "${READER[@]}" test -f "$src" 9>&- || return 0
  local tmp
  tmp="$(mktemp "$RELEASES/.work-settings-XXXXXX")"
  "${READER[@]}" cat -- "$src" >"$tmp" 9>&- || { rm -f "$tmp"; die "cannot read $src"; }
  prepare_state_dirs
  # Validation and writing in one small fixed program: no shell ever sees the values.
  # Every value is checked before the first write, so a rejected file changes nothing.
  if ! node -e "$PUT_JS"'
    const [src, etc, data, uid, gid] = process.argv.slice(1);
    const bad = (m) => fail("runtime-settings.json: " + m);
    let s;
    try { s = JSON.parse(fs.readFileSync(src, "utf8")); } catch (e) { bad("not valid JSON"); }
    if (!s || typeof s !== "object" || Array.isArray(s)) bad("must be a JSON object");
    for (const k of Object.keys(s)) if (!["runtimeConfig", "anthropicApiKey", "apiToken", "bridges", "telegramBotToken", "webhookSecret"].includes(k)) bad("unknown key " + JSON.stringify(k).slice(0, 40));
    const line = (v, name, re) => { if (typeof v !== "string" || !re.test(v)) bad(name + " has an invalid format"); return v; };
    const isObject = (v) => !!v && typeof v === "object" && !Array.isArray(v);
    const writes = [];
    const removes = [];
    let config = s.runtimeConfig;
    if (config !== undefined && !isObject(config)) bad("runtimeConfig must be an object");
    // The bridges: their section set into runtime.json (the one in place unless runtimeConfig
    // replaces it), their secrets into the folder the runtime unit loads; an absent one is removed.
    const bridgeDir = etc + "/credentials/bridges";
    const bridgeSecrets = [["telegramBotToken", "telegram-bot-token", /^\d{3,20}:[A-Za-z0-9_-]{20,100}$/], ["webhookSecret", "webhook-secret", /^[\x21-\x7e]{32,512}$/]];
    if (s.bridges !== undefined) {
      if (!isObject(s.bridges)) bad("bridges must be an object");
      if (config === undefined) {
        try { config = JSON.parse(fs.readFileSync(etc + "/runtime.json", "utf8")); } catch (e) { bad("cannot read the runtime.json to set its bridges in"); }
        if (!isObject(config)) bad("the runtime.json in place is not an object");
      }
      config = { ...config, bridges: s.bridges };
      for (const [key, file, re] of bridgeSecrets) {
        if (s[key] !== undefined) writes.push([bridgeDir + "/" + file, line(s[key], key, re) + "\n", 0o600, 0, 0]);
        else removes.push(bridgeDir + "/" + file);
      }
    } else if (bridgeSecrets.some(([key]) => s[key] !== undefined)) bad("bridge secrets come with their bridges section");
    if (config !== undefined) writes.push([etc + "/runtime.json", JSON.stringify(config, null, 2) + "\n", 0o640, 0, Number(gid)]);
    if (s.anthropicApiKey !== undefined)
      writes.push([etc + "/credentials/anthropic-api-key", line(s.anthropicApiKey, "anthropicApiKey", /^[A-Za-z0-9_-]{8,512}$/) + "\n", 0o600, 0, 0]);
    if (s.apiToken !== undefined)
      writes.push([data + "/api-token", line(s.apiToken, "apiToken", /^[A-Za-z0-9_-]{16,256}$/) + "\n", 0o600, Number(uid), Number(gid)]);
    if (s.bridges !== undefined && !fs.lstatSync(bridgeDir, { throwIfNoEntry: false })?.isDirectory()) fs.mkdirSync(bridgeDir, { mode: 0o700 });
    // Every target must be a file (or absent) before the first write: one a less privileged
    // owner turned into a directory must not fail the install half-way.
    for (const [path] of writes) {
      const st = fs.lstatSync(path, { throwIfNoEntry: false });
      if (st && !st.isFile() && !st.isSymbolicLink()) bad(path + " is not a regular file; remove it and deploy again");
    }
    for (const w of writes) put(...w);
    for (const r of removes) fs.rmSync(r, { force: true });
  ' "$tmp" "$ETC_DIR" "$DATA_DIR" "$RT_UID" "$RT_GID"; then
    rm -f "$tmp"
    die "runtime settings were rejected; nothing was changed"
  fi
  rm -f "$tmp"
  "${READER[@]}" rm -f -- "$src" 9>&- || true
  log "installed runtime settings"
}

# The portal agent's gateway token (agent-runtime/host/agent-key.ts). Made once (also
# when the file is tmpfiles' empty placeholder or not a token): pca_ + 256 random bits,
# root 0600 in the credentials dir, where only root reads. Its SHA-256 hex is (re)written
# on every activate, with put(), to the runtime's state dir: the runtime never holds the
# token itself. Beside it, root 0600, the brain MCP headers carrying it (agent-brain-headers).
# The token is never printed; a new token or headers file restarts the agent unit, whose
# LoadCredential= reads them at start.
ensure_agent_token() {
  prepare_state_dirs
  local made
  made="$(node -e "$PUT_JS"'
    const [f, h, u, g, b] = process.argv.slice(1);
    const read = (p) => { try { return fs.readFileSync(p, "utf8"); } catch (e) { if (e.code !== "ENOENT") throw e; return ""; } };
    let t = read(f).trim();
    const make = !/^pca_[\w-]{43}$/.test(t);
    if (make) put(f, (t = "pca_" + crypto.randomBytes(32).toString("base64url")) + "\n", 0o600, 0, 0);
    put(h, crypto.createHash("sha256").update(t).digest("hex") + "\n", 0o600, +u, +g);
    const headers = JSON.stringify({ Authorization: "Bearer " + t }) + "\n";
    const stale = read(b) !== headers;
    if (stale) put(b, headers, 0o600, 0, 0);
    if (make || stale) console.log("new");
  ' "$ETC_DIR/credentials/agent-token" "$DATA_DIR/agent-token.sha256" "$RT_UID" "$RT_GID" "$ETC_DIR/credentials/agent-brain-headers")" || die "cannot write the agent token"
  # Restarted when activate ends (healthy, rolled back or failed): by then the runtime has
  # read the new hash, so the agent's first request meets a gateway that knows it.
  if [[ "$made" == new ]]; then
    log "new agent credentials: picortex-agent restarts at the end"
    trap '"$SYSTEMCTL" restart picortex-agent.service >/dev/null 2>&1 9>&- || log "restart failed"' EXIT
  fi
}

# --- Commands ----------------------------------------------------------------------
cmd_install() {
  local hash="$1" dest="$RELEASES/$1"
  if [[ -d "$dest" ]]; then
    log "release $hash is already installed"
    echo "{\"installed\":\"$hash\",\"already\":true}"
    return 0
  fi
  resolve_incoming
  local tarball="$INCOMING/$hash.tar.gz"
  # Globals so the EXIT trap still sees them after this function returns.
  STAGING="$RELEASES/.staging-$hash-$$"
  WORK="$(mktemp -d "$RELEASES/.work-XXXXXX")"
  trap 'rm -rf -- "$STAGING" "$WORK"' EXIT
  chmod 0711 "$WORK"
  local staging="$STAGING" work="$WORK"
  "${READER[@]}" cat -- "$tarball" >"$work/release.tar.gz" 2>/dev/null 9>&- \
    || die "cannot read $tarball: upload the release first (scripts/bundle.ts writes dist/release/$hash.tar.gz)"

  log "verifying $hash"
  gzip -dc "$work/release.tar.gz" >"$work/release.tar" || die "$tarball is not a valid gzip file"
  local actual
  actual="$(sha256sum "$work/release.tar" | cut -c1-${#hash})"
  [[ "$actual" == "$hash" ]] || die "content hash mismatch: $tarball hashes to $actual, not $hash (corrupt or renamed upload)"
  # Only plain files and directories with relative names: no links, devices or '..'.
  local bad
  bad="$(tar -tvf "$work/release.tar" | awk '$1 !~ /^[-d]/' | head -n 3)"
  [[ -z "$bad" ]] || die "release contains entries that are not plain files or directories: $bad"
  if tar -tf "$work/release.tar" | grep -Eq '(^/|(^|/)\.\.(/|$))'; then
    die "release contains absolute paths or '..' components"
  fi

  log "unpacking into $dest"
  mkdir -p "$staging"
  tar -xf "$work/release.tar" -C "$staging" --no-same-owner --no-same-permissions
  [[ -f "$staging/picortex.mjs" && -f "$staging/manifest.json" ]] \
    || die "release $hash has no picortex.mjs or manifest.json: build it with scripts/bundle.ts"

  # Native modules (better-sqlite3, node-pty) are built and checked as the unprivileged
  # build user: the release is admin-supplied code and must never run as root.
  local build_home="$work/home"
  mkdir -p "$build_home"
  chown -R "$BUILD_USER" "$staging" "$build_home"
  if [[ -f "$staging/native-check.cjs" ]]; then
    if (cd "$staging" && as_build_user "$build_home" node native-check.cjs) >&2; then
      log "shipped native modules load on this host"
    else
      # Trigger: the shipped binaries were built for another Node ABI or libc.
      # Why: the host may run a newer Node LTS than the machine that built the bundle.
      # Outcome: rebuild from the shipped sources offline; if that fails, npm ci (network).
      log "shipped native modules do not load here; rebuilding from the shipped sources"
      local nodedir=()
      [[ -f /usr/include/node/node.h ]] && nodedir=(npm_config_nodedir=/usr)
      if ! (cd "$staging" && as_build_user "$build_home" "${nodedir[@]}" npm rebuild --offline --foreground-scripts better-sqlite3 node-pty) >&2 \
        || ! (cd "$staging" && as_build_user "$build_home" node native-check.cjs) >&2; then
        log "offline rebuild failed; trying npm ci --omit=dev (needs the npm registry)"
        (cd "$staging" && as_build_user "$build_home" npm ci --omit=dev --no-audit --no-fund) >&2 \
          || die "could not build the native modules: install build-essential and python3, or ship a release built for Node $(node -p process.versions.modules) ABI"
        (cd "$staging" && as_build_user "$build_home" node native-check.cjs) >&2 \
          || die "native modules still do not load after npm ci"
      fi
    fi
  fi

  # The runtime may read its code but never change it.
  chown -R root:root "$staging"
  chmod -R u=rwX,go=rX "$staging"
  mv -T "$staging" "$dest"
  "${READER[@]}" rm -f -- "$tarball" 2>/dev/null 9>&- || true
  log "installed $hash"
  echo "{\"installed\":\"$hash\",\"already\":false}"
}

cmd_activate() {
  local hash="$1"
  [[ -d "$RELEASES/$hash" ]] || die "release $hash is not installed: run 'picortex-release install $hash' first"
  local prev
  prev="$(link_target_hash "$CURRENT")"
  install_settings
  ensure_agent_token
  log "activating $hash${prev:+ (was $prev)}"
  if switch_to "$hash"; then
    if [[ -n "$prev" && "$prev" != "$hash" ]]; then swap_link "$PREVIOUS" "$RELEASES/$prev"; fi
    log "release $hash is active and healthy"
    echo "{\"active\":\"$hash\",\"previous\":\"${prev}\",\"rolledBack\":false}"
    return 0
  fi
  if [[ -n "$prev" && "$prev" != "$hash" && -d "$RELEASES/$prev" ]]; then
    log "rolling back to $prev"
    if switch_to "$prev"; then
      echo "{\"active\":\"$prev\",\"failed\":\"$hash\",\"rolledBack\":true}"
      die "activation of $hash failed its health check; rolled back to $prev (see: journalctl -u $UNIT)"
    fi
    die "activation of $hash failed and the rollback to $prev is unhealthy too (see: journalctl -u $UNIT)"
  fi
  die "activation of $hash failed its health check and there is no previous release to roll back to (see: journalctl -u $UNIT)"
}

cmd_rollback() {
  local target="$1"
  local cur
  cur="$(link_target_hash "$CURRENT")"
  if [[ -z "$target" ]]; then
    target="$(link_target_hash "$PREVIOUS")"
    [[ -n "$target" ]] || die "no previous release recorded; name one: picortex-release rollback <hash>"
  fi
  [[ -d "$RELEASES/$target" ]] || die "release $target is not installed"
  log "rolling back from ${cur:-nothing} to $target"
  if switch_to "$target"; then
    if [[ -n "$cur" && "$cur" != "$target" ]]; then swap_link "$PREVIOUS" "$RELEASES/$cur"; fi
    echo "{\"active\":\"$target\",\"previous\":\"${cur}\",\"rolledBack\":true}"
    return 0
  fi
  if [[ -n "$cur" && "$cur" != "$target" && -d "$RELEASES/$cur" ]]; then
    switch_to "$cur" || true
    die "release $target is unhealthy; switched back to $cur"
  fi
  die "release $target is unhealthy"
}

cmd_status() {
  local cur prev state releases="" h
  cur="$(link_target_hash "$CURRENT")"
  prev="$(link_target_hash "$PREVIOUS")"
  state="$("$SYSTEMCTL" is-active "$UNIT" 2>/dev/null 9>&- || true)"
  [[ "$state" =~ ^[a-z-]+$ ]] || state="unknown"
  for h in "$RELEASES"/*; do
    [[ -d "$h" ]] || continue
    h="$(basename "$h")"
    [[ "$h" =~ ^[a-f0-9]{12,64}$ ]] || continue
    releases+="${releases:+,}\"$h\""
  done
  local healthy=false
  HEALTH_TRIES=1
  health_ok && healthy=true
  echo "{\"current\":\"$cur\",\"previous\":\"$prev\",\"releases\":[$releases],\"unit\":\"$state\",\"healthy\":$healthy}"
}

cmd_uninstall() {
  local hash="$1" cur prev
  cur="$(link_target_hash "$CURRENT")"
  prev="$(link_target_hash "$PREVIOUS")"
  if [[ -n "$hash" && "$hash" != "$cur" ]]; then
    # A replaced release (Pulumi creates the new deployment before deleting the old one).
    if [[ "$hash" == "$prev" ]]; then
      log "keeping $hash: it is the rollback target"
      echo "{\"removed\":[],\"kept\":\"$hash\"}"
      return 0
    fi
    rm -rf -- "${RELEASES:?}/$hash"
    log "removed release $hash"
    echo "{\"removed\":[\"$hash\"]}"
    return 0
  fi
  log "stopping $UNIT and removing every release"
  "$SYSTEMCTL" disable --now --quiet "$UNIT" >/dev/null 2>&1 9>&- || "$SYSTEMCTL" stop "$UNIT" >/dev/null 2>&1 9>&- || true
  # Its socket (templates/render-units.ts) too: with no release left, a connection would
  # trigger a runtime that cannot start (until the socket gives up at its trigger limit).
  "$SYSTEMCTL" stop picortex-runtime.socket >/dev/null 2>&1 9>&- || true
  rm -f -- "$CURRENT" "$PREVIOUS" "$ETC_DIR/credentials/anthropic-api-key" "$ETC_DIR/credentials/agent-token" "$ETC_DIR/credentials/agent-brain-headers"
  # Emptied, not removed: the runtime unit's LoadCredential= needs the folder to exist.
  find "$ETC_DIR/credentials/bridges" -mindepth 1 -maxdepth 1 -delete 2>/dev/null || true
  rm -rf -- "${RELEASES:?}"/* "${RELEASES:?}"/.staging-* "${RELEASES:?}"/.work-*
  echo "{\"removed\":\"all\"}"
}

case "$CMD" in
  install) cmd_install "$HASH" ;;
  activate) cmd_activate "$HASH" ;;
  rollback) cmd_rollback "$HASH" ;;
  status) cmd_status ;;
  uninstall) cmd_uninstall "$HASH" ;;
esac
