#!/bin/sh
# picortex-listen-address: write the runtime's listen arguments (loopback + this node's
# tailnet IPv4) to $RUNTIME_DIRECTORY/listen.env for picortex-runtime.service.
# Installed root:root 0755 at /usr/local/lib/picortex/listen-address by cloud-init and
# run by picortex-listen-address.service (a sandboxed oneshot, no privileges).
#
# Why a separate step: the tailnet address is only known after tailscaled joins. It names
# the runtime (URLs, Host check); picortex-runtime.socket holds the ports.
# If no address appears in time it exits 1: the runtime then still starts on loopback
# (its EnvironmentFile is optional) and `systemctl status picortex-listen-address`
# says why.
set -eu

out_dir="${RUNTIME_DIRECTORY:?run this from picortex-listen-address.service (RuntimeDirectory=)}"
wait_seconds="${PICORTEX_LISTEN_WAIT_SECONDS:-120}"
tailscale_bin="${PICORTEX_TAILSCALE_BIN:-tailscale}"

waited=0
while :; do
  address="$("$tailscale_bin" ip -4 2>/dev/null | head -n 1 || true)"
  # Only a CGNAT-range tailnet address (100.64.0.0/10) is ever written.
  if printf '%s\n' "$address" | grep -Eqx '100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.[0-9]{1,3}\.[0-9]{1,3}'; then
    break
  fi
  if [ "$waited" -ge "$wait_seconds" ]; then
    echo "picortex-listen-address: no tailnet IPv4 after ${wait_seconds}s (is tailscaled up? try: tailscale status); the runtime stays on 127.0.0.1 only" >&2
    exit 1
  fi
  sleep 1
  waited=$((waited + 1))
done

tmp="$out_dir/listen.env.tmp"
printf 'PICORTEX_LISTEN_ARGS=--host 127.0.0.1 %s\n' "$address" > "$tmp"
mv -f "$tmp" "$out_dir/listen.env"
echo "picortex-listen-address: runtime will listen on 127.0.0.1 and $address"
