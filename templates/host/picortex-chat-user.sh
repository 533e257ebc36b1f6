#!/usr/bin/env bash
# picortex-chat-user: the ONLY way the runtime creates and deletes chat users.
#
# Installed root:root 0755 (rendered by templates/render-chat-user-helper.ts, which fills
# in the @…@ host facts from agent-runtime/host/). The sudoers drop-in lets the runtime
# user (and the admin) run it as root with exactly one argument shape:
#   picortex-chat-user ^(create|delete) [a-z][a-z0-9-]{1,23}$
# Sudo matches that regex against the arguments joined by spaces, so it cannot tell
# `create x` from one argument "create x"; this helper therefore checks the argv itself
# (exactly two elements, the id against the full chat-id grammar) and builds every
# useradd/userdel/rm argv on its own: no caller-supplied option ever reaches them.
#
#   create <id>   allocate a uid never used before (from [UID_MIN, UID_MAX], recorded in
#                 STATE_DIR/next-uid, written atomically and durably before the user
#                 exists), create pc-<id> with primary group CHAT_GROUP, and its home
#                 CHATS_ROOT/<id> (0700, owned by the chat, with a private tmp/).
#                 The uid is also above every chat uid owning a home (or anything
#                 directly in one) under CHATS_ROOT, so a lost record never hands an old
#                 chat's uid (and home) to a new chat. A home whose user is gone (server
#                 replaced, data volume kept) is re-adopted: the user is re-created with
#                 the uid that owns the home, if it is in the range and no account holds it.
#                 Prints {"user","uid","home"}. Exit 3 if the user already exists.
#   delete <id>   kill every process of the chat's uid, delete the user, then remove
#                 everything that uid owns: its home, its files in /tmp, /var/tmp, /dev/shm
#                 and /dev/mqueue (e.g. /tmp/claude-<uid>), its SysV IPC objects, its mail
#                 spool. The uid is never handed out again. Exit 6 if no such user.
#
# Exit codes: 0 ok, 1 failed, 2 usage, 3 already exists, 6 no such user.
set -euo pipefail
umask 077
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

readonly CHATS_ROOT="@CHATS_ROOT@"
readonly CHAT_GROUP="@CHAT_GROUP@"
readonly PREFIX="@CHAT_USER_PREFIX@"
readonly UID_MIN=@CHAT_UID_MIN@
readonly UID_MAX=@CHAT_UID_MAX@
readonly STATE_DIR="@STATE_DIR@"
# CHAT_ID_ERE (agent-runtime/host/contract.ts): CHAT_ID_PATTERN without its lookahead: a
# letter, then letters, digits and single hyphens not at the end; the length apart.
readonly ID_ERE='@CHAT_ID_ERE@'
readonly SHARED_TMP_DIRS=(/tmp /var/tmp /dev/shm /dev/mqueue)

die() { echo "picortex-chat-user: $*" >&2; exit 1; }
usage() { echo "usage: picortex-chat-user create|delete <chat-id>" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
CMD="$1"
ID="$2"
case "$CMD" in create|delete) ;; *) usage ;; esac
if [[ ${#ID} -lt @CHAT_ID_MIN@ || ${#ID} -gt @CHAT_ID_MAX@ || ! "$ID" =~ $ID_ERE ]]; then
  echo "picortex-chat-user: invalid chat id (2-24 characters: lowercase letters, digits, single hyphens, starting with a letter)" >&2
  exit 2
fi
[[ "$(id -u)" -eq 0 ]] || die "must run as root (the runtime runs it as: sudo -n $0 $CMD <id>)"

readonly USER_NAME="$PREFIX$ID"
readonly HOME_DIR="$CHATS_ROOT/$ID"

# Root-owned, not a symlink: root writes here (state) or creates names here (homes).
root_dir() { # root_dir <path> <what>
  [[ -d "$1" && ! -L "$1" && "$(stat -c %u "$1")" == 0 ]] || die "$2 $1 must be a directory owned by root"
}
root_dir "$CHATS_ROOT" "the chats root"
if [[ ! -e "$STATE_DIR" ]]; then mkdir -m 0700 -- "$STATE_DIR"; fi
root_dir "$STATE_DIR" "the state dir"

# One create/delete at a time: allocation reads and advances one counter.
exec 9>>"$STATE_DIR/lock"
flock -w 120 9 || die "another picortex-chat-user is still running"

group_gid() { getent group "$CHAT_GROUP" | cut -d: -f3; }

# Writes <file> atomically and durably: temp file in the same root-only dir, fsync, rename.
write_state() { # write_state <file> <text>
  local tmp
  tmp="$(mktemp "$STATE_DIR/.tmp-XXXXXXXX")"
  printf '%s\n' "$2" >"$tmp"
  sync -- "$tmp"
  mv -f -- "$tmp" "$1"
  sync -- "$STATE_DIR"
}

# The highest uid in [UID_MIN, UID_MAX] owning a chat home or anything directly in one
# (0 if none). After a server replacement the data volume keeps the homes, owned by
# their numeric uids, while /etc/passwd starts fresh: those uids are still taken.
highest_home_uid() {
  { find "$CHATS_ROOT" -xdev -mindepth 1 -maxdepth 2 -printf '%U\n' 9>&- 2>/dev/null || true; } \
    | awk -v lo="$UID_MIN" -v hi="$UID_MAX" 'BEGIN { m = 0 } $1 >= lo && $1 <= hi && $1 > m { m = $1 } END { print m }'
}

# Records that every uid below <next> is taken (never lowers the record).
record_next_uid() { # record_next_uid <next>
  local cur
  cur="$(cat -- "$STATE_DIR/next-uid" 2>/dev/null || echo 0)"
  [[ "$cur" =~ ^[0-9]{1,10}$ ]] || cur=0
  ((10#$cur >= $1)) || write_state "$STATE_DIR/next-uid" "$1"
}

allocate_uid() {
  local next uid floor
  next="$(cat -- "$STATE_DIR/next-uid" 2>/dev/null || echo "$UID_MIN")"
  [[ "$next" =~ ^[0-9]{1,10}$ ]] || die "$STATE_DIR/next-uid is corrupt (${next:0:20}); fix it by hand to a uid above every chat uid ever used"
  uid=$((10#$next))
  ((uid >= UID_MIN)) || uid=$UID_MIN
  # Never below a uid that still owns a home (the record may be lost or behind).
  floor="$(highest_home_uid)"
  [[ "$floor" =~ ^[0-9]+$ ]] || die "could not scan $CHATS_ROOT for the uids owning chat homes"
  ((uid > floor)) || uid=$((floor + 1))
  # Skip any uid some account already holds (e.g. created by hand).
  while getent passwd "$uid" >/dev/null; do uid=$((uid + 1)); done
  ((uid <= UID_MAX)) || die "the chat uid range $UID_MIN-$UID_MAX is used up"
  # Recorded before the user exists: a crash from here on wastes the uid, never reuses it.
  write_state "$STATE_DIR/next-uid" "$((uid + 1))"
  printf '%s create %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$uid" "$USER_NAME" >>"$STATE_DIR/allocations"
  sync -- "$STATE_DIR/allocations"
  echo "$uid"
}

# A home left without its user (the server was replaced, the data volume kept): the chat
# is re-created with the uid that owns the home, if that uid is a chat uid nobody holds.
readopt_home() { # readopt_home <gid>
  local uid holder
  [[ -d "$HOME_DIR" && ! -L "$HOME_DIR" ]] || die "$HOME_DIR exists but is not a directory; remove it first"
  uid="$(stat -c %u -- "$HOME_DIR")"
  ((uid >= UID_MIN && uid <= UID_MAX)) \
    || die "$HOME_DIR is owned by uid $uid, outside the chat uid range $UID_MIN-$UID_MAX; not re-adopting it (remove it, or chown it to the chat's old uid)"
  holder="$(getent passwd "$uid" | cut -d: -f1 || true)"
  [[ -z "$holder" ]] \
    || die "$HOME_DIR is owned by uid $uid, which account $holder now holds; refusing to hand it to $USER_NAME (delete $holder with this helper, or remove $HOME_DIR)"
  record_next_uid "$((uid + 1))"
  printf '%s readopt %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$uid" "$USER_NAME" >>"$STATE_DIR/allocations"
  sync -- "$STATE_DIR/allocations"
  useradd --uid "$uid" --gid "$CHAT_GROUP" --home-dir "$HOME_DIR" --no-create-home \
    --shell /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 -- "$USER_NAME" 9>&- \
    || die "useradd $USER_NAME failed"
  # The chat group may have a new gid on the new server: the home and its tmp/ follow it.
  chown -h -- "$uid:$1" "$HOME_DIR" || die "could not chown $HOME_DIR"
  if [[ -d "$HOME_DIR/tmp" && ! -L "$HOME_DIR/tmp" ]]; then chown -h -- "$uid:$1" "$HOME_DIR/tmp"; fi
  echo "{\"user\":\"$USER_NAME\",\"uid\":$uid,\"home\":\"$HOME_DIR\",\"readopted\":true}"
}

cmd_create() {
  if getent passwd "$USER_NAME" >/dev/null; then
    echo "picortex-chat-user: user $USER_NAME already exists" >&2
    exit 3
  fi
  local gid uid
  gid="$(group_gid)"
  [[ -n "$gid" ]] || die "group $CHAT_GROUP does not exist"
  if [[ -e "$HOME_DIR" || -L "$HOME_DIR" ]]; then readopt_home "$gid"; return; fi
  uid="$(allocate_uid)"
  # Fixed argv: explicit uid, the chat group as primary group, no supplementary groups,
  # no subordinate id ranges, no home created from /etc/skel (made below, 0700 at once).
  useradd --uid "$uid" --gid "$CHAT_GROUP" --home-dir "$HOME_DIR" --no-create-home \
    --shell /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 -- "$USER_NAME" 9>&- \
    || die "useradd $USER_NAME failed"
  # The chats root is root's (checked above), so these names cannot be swapped under us.
  if ! { mkdir -m 0700 -- "$HOME_DIR" && mkdir -m 0700 -- "$HOME_DIR/tmp" \
      && chown -- "$uid:$gid" "$HOME_DIR/tmp" && chown -- "$uid:$gid" "$HOME_DIR"; }; then
    userdel -- "$USER_NAME" 9>&- || true
    rm -rf --one-file-system -- "$HOME_DIR"
    die "could not create $HOME_DIR"
  fi
  echo "{\"user\":\"$USER_NAME\",\"uid\":$uid,\"home\":\"$HOME_DIR\"}"
}

# Kills every process of <uid> until none is left (a fork racing the kill is caught by
# the next round).
kill_uid() { # kill_uid <uid>
  local i
  for ((i = 0; i < 50; i++)); do
    pkill -KILL -U "$1" 9>&- || true
    pgrep -U "$1" >/dev/null 9>&- || return 0
    sleep 0.1
  done
  die "processes of uid $1 survive SIGKILL: $(pgrep -U "$1" | head -5 | tr '\n' ' ')"
}

# SysV IPC objects owned or created by <uid>, removed AS that uid: IPC_RMID needs the
# owner (or CAP_SYS_ADMIN, which the runtime's bounding set does not have).
remove_ipc() { # remove_ipc <uid> <gid>
  local kind flag line id owner creator
  for kind in shm:m msg:q sem:s; do
    flag="${kind#*:}"
    [[ -r "/proc/sysvipc/${kind%%:*}" ]] || continue
    while read -r line; do
      read -r -a f <<<"$line"
      # Columns: key id perms ... uid gid cuid cgid ... (uid/cuid at fixed offsets per kind).
      case "${kind%%:*}" in
        shm) id="${f[1]}"; owner="${f[7]}"; creator="${f[9]}" ;;
        msg) id="${f[1]}"; owner="${f[7]}"; creator="${f[9]}" ;;
        sem) id="${f[1]}"; owner="${f[4]}"; creator="${f[6]}" ;;
      esac
      if [[ "$owner" == "$1" || "$creator" == "$1" ]]; then
        setpriv --reuid="$1" --regid="$2" --clear-groups -- ipcrm "-$flag" "$id" 9>&- 2>/dev/null \
          || ipcrm "-$flag" "$id" 9>&- 2>/dev/null || true
      fi
    done < <(tail -n +2 "/proc/sysvipc/${kind%%:*}")
  done
}

# Everything <uid> owns in the shared temp dirs. A top-level entry it owns goes whole
# (rm -rf never follows links, and in a sticky dir nobody but its owner, whose processes
# are dead, can rename it); anything it owns deeper down goes on its own.
remove_files() { # remove_files <uid>
  local d
  for d in "${SHARED_TMP_DIRS[@]}"; do
    [[ -d "$d" && ! -L "$d" ]] || continue
    find "$d" -xdev -mindepth 1 -maxdepth 1 -user "$1" -exec rm -rf --one-file-system -- {} + 9>&- 2>/dev/null || true
    find "$d" -xdev -mindepth 1 -depth -user "$1" -delete 9>&- 2>/dev/null || true
  done
}

cmd_delete() {
  local entry uid gid chat_gid
  entry="$(getent passwd "$USER_NAME" || true)"
  if [[ -z "$entry" ]]; then
    echo "picortex-chat-user: no such user $USER_NAME" >&2
    exit 6
  fi
  uid="$(cut -d: -f3 <<<"$entry")"
  gid="$(cut -d: -f4 <<<"$entry")"
  chat_gid="$(group_gid)"
  # Never touch an account that is not a chat: primary group must be the chat group,
  # and no uid below 1000 (system accounts), whatever its name.
  [[ -n "$chat_gid" && "$gid" == "$chat_gid" ]] || die "$USER_NAME is not in group $CHAT_GROUP; refusing to delete it"
  [[ "$uid" =~ ^[0-9]+$ ]] && ((uid >= 1000)) || die "$USER_NAME has uid $uid; refusing to delete it"
  kill_uid "$uid"
  local i
  for ((i = 0; i < 5; i++)); do
    userdel -- "$USER_NAME" 9>&- && break
    # 8: "user is currently used by process": one started since the kill.
    kill_uid "$uid"
  done
  ! getent passwd "$USER_NAME" >/dev/null || die "userdel $USER_NAME failed"
  # Nothing can start as the uid any more (no such user for sudo); catch stragglers.
  kill_uid "$uid"
  remove_ipc "$uid" "$gid"
  remove_files "$uid"
  if [[ -d "$HOME_DIR" && ! -L "$HOME_DIR" ]]; then rm -rf --one-file-system -- "$HOME_DIR"; fi
  rm -f -- "/var/mail/$USER_NAME" "/var/spool/mail/$USER_NAME"
  printf '%s delete %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$uid" "$USER_NAME" >>"$STATE_DIR/allocations"
  echo "{\"deleted\":\"$USER_NAME\",\"uid\":$uid}"
}

case "$CMD" in
  create) cmd_create ;;
  delete) cmd_delete ;;
esac
