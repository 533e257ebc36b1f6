/**
 * The host's live tailnet name, by device lookup (issue 21 item 10, second half).
 *
 * The host joins as its configured name (`picortex`) unless a device of that name is still
 * registered: then Tailscale names the new node `picortex-1`, and MagicDNS `picortex` keeps
 * resolving to the dead one. TailnetDeviceCleanup removes the old node on destroy and
 * before a replacement, but it is best effort (no credential, the API down). So the stack
 * also looks the devices up on every run, through the tailscale provider's own data
 * source (`tailscale.getDevices`, as `tailscale_device` does: by host name), and takes
 * the newest device of this host (its OS host name is the configured one and it carries
 * the host's tags; a person's machine with the same name carries no such tags): its
 * MagicDNS short name is what `runtimeUrl` and the deploy use. With no such device yet
 * (first up: the server has not booted) the configured name stands.
 *
 * What it cannot do: during the very `up` that replaces the server, the lookup runs
 * before the new node exists, so that `up` still uses the name known then; if the old
 * node could not be removed, the next `up` finds `picortex-1` and moves `runtimeUrl` and
 * the deploy to it.
 */

/** The fields of a getDevices device the choice reads. */
export interface TailnetDeviceInfo {
  hostname: string;
  name: string;
  tags?: string[];
  created?: string;
}

const SHORT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The MagicDNS short name of the host's newest device (OS host name `hostname`, carrying
 * every tag in `tags`), or `hostname` when there is none. Pure.
 */
export function liveTailnetName(devices: readonly TailnetDeviceInfo[] | undefined, hostname: string, tags: readonly string[]): string {
  const mine = (devices ?? []).filter((d) => d.hostname === hostname && tags.every((t) => (d.tags ?? []).includes(t)));
  if (mine.length === 0) return hostname;
  // Newest by creation time; on a tie (the API gives seconds) the later in the list.
  let newest = mine[0]!;
  for (const d of mine.slice(1)) if ((Date.parse(d.created ?? "") || 0) >= (Date.parse(newest.created ?? "") || 0)) newest = d;
  const short = String(newest.name ?? "").split(".")[0]!.toLowerCase();
  return SHORT_NAME.test(short) ? short : hostname;
}
