/**
 * Double of pulumi-resource-hcloud (the Pulumi bridge over hetznercloud/terraform-provider-hcloud,
 * SDK @pulumi/hcloud 1.41.0) for the resource types picortex declares. It calls the
 * Hetzner API emulator over HTTP with the requests hcloud-go sends.
 *
 * Contract rules, each with its source (read through the search tools):
 *  R1 Server schema (terraform-provider-hcloud internal/server/resource.go):
 *     ForceNew: image, location, datacenter, user_data, ssh_keys. Updated in place:
 *     name, server_type, labels, backups, firewall_ids, delete/rebuild_protection,
 *     public_net (power-off, change, power-on). Defaults false: keep_disk,
 *     allow_deprecated_images, backups, ignore_remote_firewall_ids, delete_protection,
 *     rebuild_protection, shutdown_before_deletion. Computed: ipv4_address,
 *     ipv6_address, ipv6_network, status, backup_window, primary_disk_size; location,
 *     datacenter and firewall_ids are Optional+Computed (absent input = no diff).
 *  R2 user_data is stored as base64(sha1(user_data)) (StateFunc userDataHashSum) and
 *     compared through userDataDiffSuppress (hash of the new value, or trimmed text).
 *  R3 Create: GET server type by name, GET image by name for its architecture,
 *     GET each ssh key, POST /servers, wait for action + next_actions, change_protection
 *     when either protection is set, then Read (GET /servers/{id}).
 *  R4 Delete: with shutdown_before_deletion, POST actions/shutdown, wait, poll status
 *     until "off" (gives up after retries with a warning), then DELETE /servers/{id}
 *     and wait for its action. A protected server fails the DELETE *after* the shutdown
 *     (the provider does not check protection first): measured, issue 21 item 2.
 *  R5 Delete-before-replace: the bridge answers deleteBeforeReplace when a replacement
 *     is needed and `name` was given by the program rather than auto-named
 *     (pulumi-terraform-bridge nameRequiresDeleteBeforeReplace; measured with the real
 *     provider: true for the server, false for the auto-named SshKey).
 *  R6 Auto-naming: a missing name becomes `<resource name>-<7 hex>` from the engine's
 *     random seed, kept across updates (bridge AutoName); recorded in `__defaults`.
 *  R7 SshKey (internal/sshkey/resource.go): public_key ForceNew (whitespace-trimmed
 *     compare), name and labels updated in place (PUT); computed fingerprint.
 *  R8 Firewall (internal/firewall/resource.go): name, labels (PUT) and rules
 *     (actions/set_rules) update in place; rules compare as a set.
 *  R9 hcloud-go v2.44.0 retries (hcloud/client_handler_retry.go, retryPolicy): the API
 *     error codes `conflict`, `rate_limit_exceeded`, `bad_gateway` and `timeout` on ANY
 *     method, a non-JSON 502/504, up to 5 retries (client.go retryMaxRetries) with
 *     exponential backoff from 1 s (Retry-After is not read). Measured with the real
 *     provider: a 429 on a write is retried and the up succeeds (the double retried GETs
 *     only, and faults.test.ts asserted that). Other errors surface as "<message> (<code>)".
 *  R10 Actions are awaited by polling GET /actions?id=…&sort=status&sort=id
 *     (action_waiter.go); an action in status "error" fails the step with its message.
 *  R11 Read of a missing resource (404 not_found) drops it from state.
 *  R12, R13 Volume and VolumeAttachment: see their section below.
 */
import { createHash } from "node:crypto";
import { ProviderError, PartialCreateError, UNKNOWN, containsUnknown, diffProps, unknowns, type Ctx, type Props, type ProviderDef, type ResourceDef } from "./framework.js";
import { apiCall, ApiError, type ApiClientOptions } from "./http.js";

const USER_AGENT = "hcloud-go/2.44.0";

function client(ctx: Ctx): ApiClientOptions {
  const c = ctx.config;
  return {
    baseUrl: String(c.endpoint).replace(/\/+$/, ""),
    headers: { authorization: `Bearer ${c.token}`, "user-agent": USER_AGENT, accept: "application/json" },
    retryAfter(method, status, body, _headers, attempt) {
      if (attempt >= 5) return null;
      const code = (body?.error as Props | undefined)?.code;
      const backoff = Math.min(1000 * 2 ** attempt, 8000);
      if (typeof code === "string" && ["conflict", "rate_limit_exceeded", "bad_gateway", "timeout"].includes(code)) return backoff;
      if (code === undefined && [502, 504].includes(status)) return backoff;
      return null;
    },
    errorMessage(_method, _path, status, body) {
      const e = body?.error as Props | undefined;
      if (!e) return `hcloud: server responded with status code ${status}`;
      return `${e.message} (${e.code})`;
    },
  };
}

/**
 * How the real hcloud provider words a failed write (recorded: recordings/faults.jsonl).
 * - SDKv2 resources (server, firewall, volume): the bridge joins the Terraform
 *   diagnostics with hashicorp/go-multierror ("1 error occurred:\n\t* <msg>\n\n"), and a
 *   create that failed after the resource exists (a partial create) is wrapped
 *   `creating <urn>: ...` (pulumi-terraform-bridge provider.go Create:
 *   `errors.Wrapf(err, "creating %s", urn)` into the init-failure reasons).
 * - plugin-framework resources (sshKey): terraform-provider-hcloud's
 *   hcloudutil.APIErrorDiagnostics, summary "API request failed" and its detail
 *   ("An unexpected error was encountered during an API request.\n\n<err>\n\nError code:
 *   <code>\nStatus code: <status>\n"), printed by the bridge as "<summary>: <detail>".
 * volumeAttachment is an SDKv2 resource too; its failure wording is not recorded yet.
 */
export function sdkv2ErrorText(err: Error, method: "Create" | "Update" | "Delete", urn: string): string {
  const joined = `1 error occurred:\n\t* ${err.message}\n\n`;
  return method === "Create" && err instanceof PartialCreateError ? `creating ${urn}: ${joined}` : joined;
}
export function frameworkErrorText(err: Error): string {
  const head = "API request failed: An unexpected error was encountered during an API request.\n\n";
  if (err instanceof ApiError && err.code !== undefined) return `${head}${err.message}\n\nError code: ${err.code}\nStatus code: ${err.status}\n`;
  return `${head}${err.message}\n`;
}

const api = <T = Props>(ctx: Ctx, method: string, path: string, body?: unknown) => apiCall<T>(client(ctx), method, path, body);

async function waitActions(ctx: Ctx, actions: Props[]): Promise<void> {
  let running = actions.filter((a) => a && a.status === "running").map((a) => Number(a.id));
  for (const a of actions) if (a?.status === "error") throw actionError(a);
  for (let i = 0; running.length > 0; i++) {
    await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** Math.floor(i / 4), 2000)));
    const q = running
      .sort((a, b) => a - b)
      .map((id) => `id=${id}`)
      .join("&");
    const res = await api(ctx, "GET", `/actions?${q}&sort=status&sort=id&page=1&per_page=50`);
    const got = (res.actions as Props[]) ?? [];
    if (got.length !== running.length) throw new ProviderError(`actions not found: ${running.filter((id) => !got.some((a) => a.id === id)).join(", ")}`);
    for (const a of got) if (a.status === "error") throw actionError(a);
    running = got.filter((a) => a.status === "running").map((a) => Number(a.id));
  }
}
function actionError(a: Props): ProviderError {
  const e = (a.error as Props | undefined) ?? {};
  return new ProviderError(`action ${a.id} failed: ${e.message ?? "unknown error"} (${e.code ?? "action_failed"})`);
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 404 || err.code === "not_found");
}

// ---- R6 auto-naming ---------------------------------------------------------------

function autoname(ctx: Ctx, news: Props, olds: Props, seed: Buffer, maxLen = 63): Props {
  if (news.name !== undefined && news.name !== null && news.name !== "") return { ...news, __defaults: [] };
  if (typeof olds.name === "string" && Array.isArray(olds.__defaults) && olds.__defaults.includes("name")) {
    return { ...news, name: olds.name, __defaults: ["name"] };
  }
  const hex = createHash("sha256").update(seed.length ? seed : Buffer.from(ctx.urn)).digest("hex").slice(0, 7);
  return { ...news, name: `${ctx.name}-${hex}`.slice(0, maxLen), __defaults: ["name"] };
}
/**
 * The SshKey's checked inputs carry no `__defaults` at all (recorded with the real
 * provider, recordings/workspace-lifecycle.jsonl): an auto-name is kept from the old
 * inputs when the program gives none, and recognised by its `<resource name>-<7 hex>` form.
 */
function autonameUntracked(ctx: Ctx, news: Props, olds: Props, seed: Buffer): Props {
  if (news.name !== undefined && news.name !== null && news.name !== "") return news;
  if (typeof olds.name === "string" && isAutoname(ctx, olds.name)) return { ...news, name: olds.name };
  const { __defaults: _d, ...named } = autoname(ctx, news, {}, seed);
  return named;
}
const isAutoname = (ctx: Ctx, name: unknown) => typeof name === "string" && new RegExp(`^${ctx.name.replace(/[^A-Za-z0-9]/g, "\\$&")}-[0-9a-f]{7}$`).test(name);
function dbr(news: Props, replaces: string[]): boolean {
  return replaces.length > 0 && !(Array.isArray(news.__defaults) && news.__defaults.includes("name"));
}

// ---- SshKey ------------------------------------------------------------------------

const sshKeyOuts = (k: Props, inputs: Props): Props => ({
  fingerprint: k.fingerprint,
  labels: k.labels ?? {},
  name: k.name,
  publicKey: inputs.publicKey ?? k.public_key,
});

const sshKey: ResourceDef = {
  errorText: frameworkErrorText,
  check(ctx, news, olds, seed) {
    const failures = typeof news.publicKey === "string" || news.publicKey === undefined ? [] : [{ property: "publicKey", reason: "publicKey must be a string" }];
    if (news.publicKey === undefined) failures.push({ property: "publicKey", reason: "Missing required property 'publicKey'" });
    return { inputs: autonameUntracked(ctx, news, olds, seed), failures };
  },
  diff(ctx, _id, olds, news) {
    const d = diffProps(["name", "publicKey", "labels"], ["publicKey"], olds, news, {
      publicKey: (v) => (typeof v === "string" ? v.trim() : v),
      labels: (v) => v ?? {},
    });
    return { ...d, deleteBeforeReplace: d.replaces.length > 0 && !isAutoname(ctx, news.name) };
  },
  // Recorded: no detailed diff when nothing changed; no inputDiff flags (the bridge's).
  diffShape: { detailedDiffWhenNone: false, inputDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    if (ctx.preview) return { id: "", outs: { ...inputs, ...unknowns(["fingerprint"]) } };
    const res = await api(ctx, "POST", "/ssh_keys", { name: inputs.name, public_key: inputs.publicKey, labels: inputs.labels ?? {} });
    const k = res.ssh_key as Props;
    return { id: String(k.id), outs: sshKeyOuts(k, inputs) };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const k = (await api(ctx, "GET", `/ssh_keys/${id}`)).ssh_key as Props;
      const o = sshKeyOuts(k, outs);
      const { __defaults: _d, ...given } = inputs;
      return { id, outs: o, inputs: { ...given, name: k.name, labels: k.labels ?? {} } };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  },
  async update(ctx, id, olds, news) {
    if (ctx.preview) return { ...olds, ...news };
    const k = (await api(ctx, "PUT", `/ssh_keys/${id}`, { name: news.name, labels: news.labels ?? {} })).ssh_key as Props;
    return { ...sshKeyOuts(k, news), __defaults: news.__defaults };
  },
  async delete(ctx, id) {
    try {
      await api(ctx, "DELETE", `/ssh_keys/${id}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

// ---- Firewall ----------------------------------------------------------------------

type Rule = { direction: string; protocol: string; port?: string; sourceIps?: string[]; destinationIps?: string[]; description?: string };
const ruleToApi = (r: Rule) => ({
  direction: r.direction,
  protocol: r.protocol,
  ...(r.port !== undefined ? { port: r.port } : {}),
  source_ips: r.sourceIps ?? [],
  destination_ips: r.destinationIps ?? [],
  ...(r.description !== undefined ? { description: r.description } : {}),
});
const ruleFromApi = (r: Props): Rule => ({
  description: r.description ?? "",
  destinationIps: r.destination_ips ?? [],
  direction: r.direction,
  port: r.port ?? "",
  protocol: r.protocol,
  sourceIps: r.source_ips ?? [],
});
/** Rules are a set in the schema: compare sorted, with defaults filled. */
const normRules = (v: unknown) =>
  ((v as Rule[] | undefined) ?? [])
    .map((r) => JSON.stringify({ description: r.description ?? "", destinationIps: [...(r.destinationIps ?? [])].sort(), direction: r.direction, port: r.port ?? "", protocol: r.protocol, sourceIps: [...(r.sourceIps ?? [])].sort() }))
    .sort();

const firewallOuts = (f: Props): Props => ({
  applyTos: ((f.applied_to as Props[]) ?? []).filter((a) => a.type === "server").map((a) => ({ server: (a.server as Props).id, labelSelector: "" })),
  labels: f.labels ?? {},
  name: f.name,
  rules: ((f.rules as Props[]) ?? []).map(ruleFromApi),
});

/**
 * The bridge's Check converts every object of the inputs, nested blocks' elements
 * included, through makeObjectTerraformInputs, whose applyDefaults records the defaulted
 * properties in that object's own `__defaults` (pulumi-terraform-bridge v3.135.0
 * pkg/tfbridge/schema.go; a map such as `labels` is not a block and gets none). A block
 * with no schema default answers `__defaults: []`. Recorded with the real provider: each
 * firewall rule (recordings/deploy.jsonl) and each server publicNets block. Outputs never
 * carry it, and a refresh's Read drops the empty ones (provider.go deleteDefaultsKey).
 */
function blockDefaults(v: unknown): unknown {
  return Array.isArray(v) ? v.map((b) => (b && typeof b === "object" && !Array.isArray(b) ? { ...(b as Props), __defaults: [] } : b)) : v;
}

const firewall: ResourceDef = {
  errorText: sdkv2ErrorText,
  check(ctx, news, olds, seed) {
    const checked = autoname(ctx, news, olds, seed);
    // No firewall rule field has a schema default (internal/firewall/resource.go).
    if (Array.isArray(checked.rules)) checked.rules = blockDefaults(checked.rules);
    return { inputs: checked };
  },
  diff(_ctx, _id, olds, news) {
    const d = diffProps(["name", "labels", "rules"], [], olds, news, { labels: (v) => v ?? {}, rules: normRules });
    return { ...d, deleteBeforeReplace: false };
  },
  // Recorded (recordings/workspace-lifecycle.jsonl): hasDetailedDiff even with no change, no inputDiff flags.
  diffShape: { detailedDiffWhenNone: true, inputDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    if (ctx.preview) return { id: "", outs: { ...inputs, applyTos: [] } };
    const res = await api(ctx, "POST", "/firewalls", { name: inputs.name, labels: inputs.labels ?? {}, rules: ((inputs.rules as Rule[]) ?? []).map(ruleToApi) });
    const f = res.firewall as Props;
    await waitActions(ctx, (res.actions as Props[]) ?? []);
    return { id: String(f.id), outs: { ...firewallOuts(f), __defaults: inputs.__defaults } };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const f = (await api(ctx, "GET", `/firewalls/${id}`)).firewall as Props;
      const o = firewallOuts(f);
      return { id, outs: { ...outs, ...o }, inputs: { ...inputs, name: o.name, labels: o.labels, rules: o.rules } };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  },
  async update(ctx, id, olds, news) {
    if (ctx.preview) return { ...olds, ...news };
    if (olds.name !== news.name || JSON.stringify(olds.labels ?? {}) !== JSON.stringify(news.labels ?? {})) {
      await api(ctx, "PUT", `/firewalls/${id}`, { name: news.name, labels: news.labels ?? {} });
    }
    if (JSON.stringify(normRules(olds.rules)) !== JSON.stringify(normRules(news.rules))) {
      const res = await api(ctx, "POST", `/firewalls/${id}/actions/set_rules`, { rules: ((news.rules as Rule[]) ?? []).map(ruleToApi) });
      await waitActions(ctx, (res.actions as Props[]) ?? []);
    }
    const f = (await api(ctx, "GET", `/firewalls/${id}`)).firewall as Props;
    return { ...firewallOuts(f), __defaults: news.__defaults };
  },
  async delete(ctx, id) {
    // The provider retries a firewall still in use while a server detaches (control.Retry).
    for (let attempt = 0; ; attempt++) {
      try {
        await api(ctx, "DELETE", `/firewalls/${id}`);
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (err instanceof ApiError && err.code === "resource_in_use" && attempt < 10) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        throw err;
      }
    }
  },
};

// ---- Server ------------------------------------------------------------------------

const SERVER_DEFAULTS = {
  allowDeprecatedImages: false,
  backups: false,
  deleteProtection: false,
  ignoreRemoteFirewallIds: false,
  keepDisk: false,
  rebuildProtection: false,
  shutdownBeforeDeletion: false,
} as const;

export function userDataHashSum(userData: string): string {
  return createHash("sha1").update(userData).digest("base64");
}
/** R2: the state holds the hash; a new raw value equals it when its hash does. */
function userDataEqual(old: unknown, neu: unknown): boolean {
  if (old === undefined || old === null || old === "") return neu === undefined || neu === null || neu === "";
  if (typeof neu !== "string") return false;
  return neu === old || userDataHashSum(neu) === old || neu.trim() === String(old).trim();
}
const normPublicNets = (v: unknown) =>
  ((v as Props[] | undefined) ?? []).map((p) => ({ ipv4Enabled: p.ipv4Enabled ?? true, ipv6Enabled: p.ipv6Enabled ?? true }));

function serverOuts(s: Props, inputs: Props): Props {
  const pn = (s.public_net as Props) ?? {};
  const v4 = pn.ipv4 as Props | null;
  const v6 = pn.ipv6 as Props | null;
  const ipv6Net = v6 ? String(v6.ip) : "";
  return {
    ...SERVER_DEFAULTS,
    // Recorded with the real provider: unset optional inputs come back null (allow_deprecated_images,
    // iso, rescue), networks as [], placement_group_id as 0, datacenter null (Hetzner removed it).
    allowDeprecatedImages: null,
    iso: null,
    rescue: null,
    networks: [],
    placementGroupId: (s.placement_group as Props | null | undefined)?.id ?? 0,
    ...inputs,
    backupWindow: s.backup_window ?? "",
    backups: !!s.backup_window,
    datacenter: (s.datacenter as Props | undefined)?.name ?? null,
    deleteProtection: !!(s.protection as Props | undefined)?.delete,
    firewallIds: ((pn.firewalls as Props[]) ?? []).map((f) => Number((f.id as number) ?? (f.firewall as Props)?.id)).sort((a, b) => a - b),
    image: /^\d+$/.test(String(inputs.image ?? "")) ? String((s.image as Props | undefined)?.id ?? inputs.image) : ((s.image as Props | undefined)?.name ?? inputs.image),
    ipv4Address: v4 ? String(v4.ip) : "",
    ipv6Address: ipv6Net ? ipv6Net.replace(/\/\d+$/, "").replace(/::$/, "::1") : "",
    ipv6Network: ipv6Net,
    labels: s.labels ?? {},
    location: ((s.datacenter as Props | undefined)?.location as Props | undefined)?.name ?? inputs.location ?? "",
    name: s.name,
    primaryDiskSize: (s.primary_disk_size as number) ?? 0,
    publicNets: [{ ipv4Enabled: !!v4, ipv6Enabled: !!v6, ipv4: v4 ? Number(v4.id ?? 0) : 0, ipv6: v6 ? Number(v6.id ?? 0) : 0 }],
    rebuildProtection: !!(s.protection as Props | undefined)?.rebuild,
    serverType: (s.server_type as Props | undefined)?.name ?? inputs.serverType,
    status: s.status,
    userData: typeof inputs.userData === "string" && inputs.userData !== "" ? (inputs.userData.length === 28 && /=$/.test(inputs.userData) ? inputs.userData : userDataHashSum(inputs.userData)) : inputs.userData,
  };
}

async function getServer(ctx: Ctx, id: string): Promise<Props> {
  return (await api(ctx, "GET", `/servers/${id}`)).server as Props;
}

const server: ResourceDef = {
  errorText: sdkv2ErrorText,
  check(ctx, news, olds, seed) {
    const failures: { property: string; reason: string }[] = [];
    if (news.serverType === undefined) failures.push({ property: "serverType", reason: "Missing required property 'serverType'" });
    if (news.image === "") failures.push({ property: "image", reason: '"image" must have more than 0 characters. Have you set the name instead of an ID?' });
    for (const k of news.sshKeys ?? []) if (k === "") failures.push({ property: "sshKeys", reason: "Invalid ssh key passed. You need to pass a string with at least 1 character" });
    // Recorded: the real Check fills no defaults (backups, keepDisk… stay absent; diff
    // compares them through `?? false`), and each publicNets block gets `__defaults: []`.
    const checked = autoname(ctx, news, olds, seed);
    if (Array.isArray(checked.publicNets)) checked.publicNets = blockDefaults(checked.publicNets);
    return { inputs: checked, failures };
  },
  diff(_ctx, _id, olds, news) {
    const keys = ["name", "serverType", "image", "location", "datacenter", "userData", "sshKeys", "labels", "backups", "firewallIds", "publicNets", "deleteProtection", "rebuildProtection", "shutdownBeforeDeletion", "keepDisk", "allowDeprecatedImages", "ignoreRemoteFirewallIds", "placementGroupId", "iso", "rescue"];
    // Optional+Computed inputs left unset never diff (R1).
    const present = keys.filter((k) => !(["location", "datacenter", "firewallIds", "publicNets"].includes(k) && news[k] === undefined));
    const d = diffProps(present, ["image", "location", "datacenter", "userData", "sshKeys"], olds, news, {
      ...Object.fromEntries(Object.keys(SERVER_DEFAULTS).map((k) => [k, (v: unknown) => v ?? false])),
      labels: (v) => v ?? {},
      firewallIds: (v) => ((v as unknown[]) ?? []).map(Number).sort((a, b) => a - b),
      publicNets: normPublicNets,
      sshKeys: (v) => ((v as unknown[]) ?? []).map(String),
      userData: (v) => v,
    });
    // R2: userData compares through its hash.
    if (d.diffs.includes("userData") && userDataEqual(olds.userData, news.userData)) {
      d.diffs = d.diffs.filter((k) => k !== "userData");
      d.replaces = d.replaces.filter((k) => k !== "userData");
      delete d.detailedDiff?.userData;
    }
    for (const k of ["iso", "rescue", "placementGroupId"]) {
      if (d.diffs.includes(k) && !news[k] && !olds[k]) {
        d.diffs = d.diffs.filter((x) => x !== k);
        delete d.detailedDiff?.[k];
      }
    }
    return { ...d, deleteBeforeReplace: dbr(news, d.replaces) };
  },
  // Recorded: stables (the bridge's list of properties an update never changes), a
  // detailed diff even with no change, no inputDiff flags.
  diffShape: { stables: ["datacenter", "image", "location", "sshKeys", "userData"], detailedDiffWhenNone: true, inputDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    if (ctx.preview) {
      return {
        id: "",
        // Recorded preview answer: a list holding an unknown is unknown as a whole (sshKeys),
        // so is userData's hash of an unknown cloud-config; the public IPs' ids are unknown.
        outs: {
          allowDeprecatedImages: null,
          backups: false,
          ignoreRemoteFirewallIds: false,
          keepDisk: false,
          iso: null,
          rescue: null,
          networks: [],
          placementGroupId: null,
          ...inputs,
          ...unknowns(["backupWindow", "datacenter", "ipv4Address", "ipv6Address", "ipv6Network", "primaryDiskSize", "status", "firewallIds", ...(inputs.location ? [] : ["location"])]),
          sshKeys: containsUnknown(inputs.sshKeys) ? UNKNOWN : inputs.sshKeys,
          publicNets: Array.isArray(inputs.publicNets) ? (inputs.publicNets as Props[]).map(({ __defaults: _d, ...p }) => ({ ...p, ipv4: UNKNOWN, ipv6: UNKNOWN })) : inputs.publicNets,
          userData: containsUnknown(inputs.userData) ? UNKNOWN : inputs.userData ? userDataHashSum(String(inputs.userData)) : inputs.userData,
        },
      };
    }
    // R3
    const types = ((await api(ctx, "GET", `/server_types?name=${encodeURIComponent(String(inputs.serverType))}`)).server_types as Props[]) ?? [];
    const type = types[0];
    if (!type) throw new ProviderError(`server type ${inputs.serverType} not found`);
    const arch = String(type.architecture ?? "x86");
    const img = String(inputs.image);
    let image: Props | undefined;
    if (/^\d+$/.test(img)) image = (await api(ctx, "GET", `/images/${img}`)).image as Props;
    else image = (((await api(ctx, "GET", `/images?architecture=${arch}&include_deprecated=true&name=${encodeURIComponent(img)}`)).images as Props[]) ?? [])[0];
    if (!image) throw new ProviderError(`image ${img} for architecture ${arch} not found`);
    const sshKeys: number[] = [];
    for (const k of (inputs.sshKeys as string[]) ?? []) {
      const path = /^\d+$/.test(String(k)) ? `/ssh_keys/${k}` : `/ssh_keys?name=${encodeURIComponent(String(k))}`;
      const got = await api(ctx, "GET", path);
      const key = (got.ssh_key as Props | undefined) ?? ((got.ssh_keys as Props[] | undefined) ?? [])[0];
      if (!key) throw new ProviderError(`SSH key not found: ${k}`);
      sshKeys.push(Number(key.id));
    }
    const pn = normPublicNets(inputs.publicNets)[0];
    const body: Props = {
      name: inputs.name,
      server_type: inputs.serverType,
      image: image.id !== undefined ? String(image.id) : img,
      ...(inputs.userData ? { user_data: inputs.userData } : {}),
      ssh_keys: sshKeys,
      ...(inputs.location ? { location: inputs.location } : {}),
      ...(inputs.datacenter ? { datacenter: inputs.datacenter } : {}),
      labels: inputs.labels ?? {},
      ...(inputs.firewallIds?.length ? { firewalls: (inputs.firewallIds as number[]).map((id) => ({ firewall: Number(id) })) } : {}),
      ...(pn ? { public_net: { enable_ipv4: pn.ipv4Enabled, enable_ipv6: pn.ipv6Enabled } } : {}),
      start_after_create: true,
    };
    const res = await api(ctx, "POST", "/servers", body);
    const s = res.server as Props;
    const id = String(s.id);
    try {
      await waitActions(ctx, [res.action as Props, ...((res.next_actions as Props[]) ?? [])]);
      if (inputs.deleteProtection || inputs.rebuildProtection) {
        const a = await api(ctx, "POST", `/servers/${id}/actions/change_protection`, { delete: !!inputs.deleteProtection, rebuild: !!inputs.rebuildProtection });
        await waitActions(ctx, [a.action as Props]);
      }
    } catch (err) {
      // The server exists: the bridge reports a partial create so the engine keeps its
      // id in state (with the error) instead of orphaning the server.
      let outs: Props = { ...inputs, userData: inputs.userData ? userDataHashSum(String(inputs.userData)) : inputs.userData };
      try {
        outs = serverOuts(await getServer(ctx, id), inputs);
      } catch {
        // keep the inputs
      }
      throw new PartialCreateError((err as Error).message, id, outs);
    }
    return { id, outs: serverOuts(await getServer(ctx, id), inputs) };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const s = await getServer(ctx, id);
      const o = serverOuts(s, { ...outs });
      // Recorded: a Read's inputs carry no __defaults inside publicNets.
      const publicNets = Array.isArray(inputs.publicNets) ? (inputs.publicNets as Props[]).map(({ __defaults: _d, ...p }) => p) : inputs.publicNets;
      return { id, outs: o, inputs: { ...inputs, ...(publicNets !== undefined ? { publicNets } : {}), name: o.name, labels: o.labels, serverType: o.serverType, deleteProtection: o.deleteProtection, rebuildProtection: o.rebuildProtection } };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  },
  async update(ctx, id, olds, news) {
    if (ctx.preview) return { ...olds, ...news, userData: olds.userData };
    const s = await getServer(ctx, id);
    if (olds.name !== news.name) await api(ctx, "PUT", `/servers/${id}`, { name: news.name });
    if (JSON.stringify(olds.labels ?? {}) !== JSON.stringify(news.labels ?? {})) await api(ctx, "PUT", `/servers/${id}`, { labels: news.labels ?? {} });
    if (olds.serverType !== news.serverType) {
      if (s.status === "running") await waitActions(ctx, [(await api(ctx, "POST", `/servers/${id}/actions/poweroff`)).action as Props]);
      await waitActions(ctx, [(await api(ctx, "POST", `/servers/${id}/actions/change_type`, { server_type: news.serverType, upgrade_disk: !news.keepDisk })).action as Props]);
    }
    if (news.firewallIds !== undefined) {
      const want = ((news.firewallIds as unknown[]) ?? []).map(Number);
      const have = (((s.public_net as Props)?.firewalls as Props[]) ?? []).map((f) => Number(f.id));
      for (const fid of have.filter((f) => !want.includes(f))) {
        const r = await api(ctx, "POST", `/firewalls/${fid}/actions/remove_from_resources`, { remove_from: [{ type: "server", server: { id: Number(id) } }] });
        await waitActions(ctx, (r.actions as Props[]) ?? []);
      }
      for (const fid of want.filter((f) => !have.includes(f))) {
        const r = await api(ctx, "POST", `/firewalls/${fid}/actions/apply_to_resources`, { apply_to: [{ type: "server", server: { id: Number(id) } }] });
        await waitActions(ctx, (r.actions as Props[]) ?? []);
      }
    }
    if (olds.deleteProtection !== news.deleteProtection || olds.rebuildProtection !== news.rebuildProtection) {
      const a = await api(ctx, "POST", `/servers/${id}/actions/change_protection`, { delete: !!news.deleteProtection, rebuild: !!news.rebuildProtection });
      await waitActions(ctx, [a.action as Props]);
    }
    // user_data is ForceNew; an ignored change keeps the old hash in state.
    return serverOuts(await getServer(ctx, id), { ...news, userData: olds.userData });
  },
  async delete(ctx, id, outs) {
    if (!/^\d+$/.test(id)) return;
    if (outs.shutdownBeforeDeletion) {
      // R4: shut down first, whatever the protection says.
      const a = await api(ctx, "POST", `/servers/${id}/actions/shutdown`);
      await waitActions(ctx, [a.action as Props]);
      let off = false;
      for (let i = 0; i < 30 && !off; i++) {
        const s = await getServer(ctx, id);
        off = s.status === "off";
        if (!off) await new Promise((r) => setTimeout(r, 1000));
      }
      if (!off) await ctx.log("warning", `Server id ${id} took longer than 30s to shut down gracefully, deleting it anyways.`);
    }
    try {
      const res = await api(ctx, "DELETE", `/servers/${id}`);
      await waitActions(ctx, [res.action as Props]);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  },
  secretOutputs: [],
};


// ---- Volume and VolumeAttachment -------------------------------------------------
// R12 hcloud_volume (internal/volume/resource.go): location and format ForceNew
//     (location Optional+Computed); name, labels (PUT), size (actions/resize, grow only)
//     and delete_protection (actions/change_protection) update in place; computed
//     linux_device. Delete detaches an attached volume first, then DELETE.
// R13 hcloud_volume_attachment (internal/volume/attachment_resource.go): volume_id,
//     server_id and automount ForceNew; id = the volume id; create POSTs actions/attach {server,
//     automount}; read drops it when the volume is no longer attached to that server;
//     delete POSTs actions/detach.

const volumeOuts = (v: Props, inputs: Props): Props => ({
  ...inputs,
  automount: inputs.automount ?? false,
  deleteProtection: !!(v.protection as Props | undefined)?.delete,
  format: v.format ?? inputs.format ?? "",
  labels: v.labels ?? {},
  linuxDevice: v.linux_device ?? "",
  location: (v.location as Props | undefined)?.name ?? inputs.location,
  name: v.name,
  // Recorded: null while the volume is attached to no server.
  serverId: v.server ?? null,
  size: v.size,
});

const volume: ResourceDef = {
  errorText: sdkv2ErrorText,
  check(ctx, news, olds, seed) {
    const failures = typeof news.size === "number" ? [] : [{ property: "size", reason: "Missing required property 'size'" }];
    return { inputs: { deleteProtection: false, ...autoname(ctx, news, olds, seed) }, failures };
  },
  diff(_ctx, _id, olds, news) {
    const keys = ["name", "size", "labels", "format", "deleteProtection", "automount", ...(news.location !== undefined ? ["location"] : []), ...(news.serverId !== undefined ? ["serverId"] : [])];
    const d = diffProps(keys, ["location", "format"], olds, news, { labels: (v) => v ?? {}, automount: (v) => !!v });
    return { ...d, deleteBeforeReplace: dbr(news, d.replaces) };
  },
  diffShape: { stables: ["location"], detailedDiffWhenNone: true, inputDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    if (ctx.preview) return { id: "", outs: { ...inputs, ...unknowns(["linuxDevice", ...(inputs.location ? [] : ["location"]), ...(inputs.serverId === undefined ? ["serverId"] : [])]) } };
    const res = await api(ctx, "POST", "/volumes", {
      name: inputs.name,
      size: inputs.size,
      ...(inputs.location ? { location: inputs.location } : {}),
      ...(inputs.serverId ? { server: Number(inputs.serverId) } : {}),
      labels: inputs.labels ?? {},
      automount: !!inputs.automount,
      ...(inputs.format ? { format: inputs.format } : {}),
    });
    const v = res.volume as Props;
    const id = String(v.id);
    try {
      await waitActions(ctx, [res.action as Props, ...((res.next_actions as Props[]) ?? [])].filter(Boolean));
      if (inputs.deleteProtection) {
        const a = await api(ctx, "POST", `/volumes/${id}/actions/change_protection`, { delete: true });
        await waitActions(ctx, [a.action as Props]);
      }
    } catch (err) {
      throw new PartialCreateError((err as Error).message, id, volumeOuts(v, inputs));
    }
    return { id, outs: volumeOuts((await api(ctx, "GET", `/volumes/${id}`)).volume as Props, inputs) };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const v = (await api(ctx, "GET", `/volumes/${id}`)).volume as Props;
      const o = volumeOuts(v, outs);
      return { id, outs: o, inputs: { ...inputs, name: o.name, labels: o.labels, size: o.size, deleteProtection: o.deleteProtection } };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  },
  async update(ctx, id, olds, news) {
    if (ctx.preview) return { ...olds, ...news };
    if (olds.name !== news.name || JSON.stringify(olds.labels ?? {}) !== JSON.stringify(news.labels ?? {})) {
      await api(ctx, "PUT", `/volumes/${id}`, { name: news.name, labels: news.labels ?? {} });
    }
    if (Number(news.size) !== Number(olds.size)) {
      await waitActions(ctx, [(await api(ctx, "POST", `/volumes/${id}/actions/resize`, { size: news.size })).action as Props]);
    }
    if (!!olds.deleteProtection !== !!news.deleteProtection) {
      await waitActions(ctx, [(await api(ctx, "POST", `/volumes/${id}/actions/change_protection`, { delete: !!news.deleteProtection })).action as Props]);
    }
    return volumeOuts((await api(ctx, "GET", `/volumes/${id}`)).volume as Props, news);
  },
  async delete(ctx, id) {
    try {
      const v = (await api(ctx, "GET", `/volumes/${id}`)).volume as Props;
      if (v.server) await waitActions(ctx, [(await api(ctx, "POST", `/volumes/${id}/actions/detach`, {})).action as Props]);
      await api(ctx, "DELETE", `/volumes/${id}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

const volumeAttachment: ResourceDef = {
  errorText: sdkv2ErrorText,
  check(_ctx, news) {
    return { inputs: { ...news, __defaults: [] } };
  },
  diff(_ctx, _id, olds, news) {
    return { ...diffProps(["volumeId", "serverId", "automount"], ["volumeId", "serverId", "automount"], olds, news, { volumeId: Number, serverId: Number, automount: (v) => !!v }), deleteBeforeReplace: false };
  },
  diffShape: { stables: ["serverId", "volumeId"], detailedDiffWhenNone: true, inputDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    const id = String(inputs.volumeId);
    if (ctx.preview) return { id: "", outs: inputs };
    const a = await api(ctx, "POST", `/volumes/${id}/actions/attach`, { server: Number(inputs.serverId), automount: !!inputs.automount });
    await waitActions(ctx, [a.action as Props]);
    return { id, outs: { automount: !!inputs.automount, serverId: Number(inputs.serverId), volumeId: Number(inputs.volumeId) } };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const v = (await api(ctx, "GET", `/volumes/${id}`)).volume as Props;
      if (!v.server || Number(v.server) !== Number(outs.serverId)) return null;
      return { id, outs: { ...outs, serverId: Number(v.server), volumeId: Number(v.id) }, inputs };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  },
  async update(_ctx, _id, olds, news) {
    return { ...olds, automount: !!news.automount };
  },
  async delete(ctx, id) {
    try {
      const v = (await api(ctx, "GET", `/volumes/${id}`)).volume as Props;
      if (!v.server) return;
      await waitActions(ctx, [(await api(ctx, "POST", `/volumes/${id}/actions/detach`, {})).action as Props]);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

export const hcloudProvider = (version: string): ProviderDef => ({
  name: "hcloud",
  version,
  bridged: true,
  configureAnswer: { acceptSecrets: false, acceptResources: false, acceptOutputs: false, supportsAutonamingConfiguration: true },
  configure(vars) {
    const token = vars.token ?? process.env.HCLOUD_TOKEN;
    const endpoint = vars.endpoint ?? process.env.HCLOUD_ENDPOINT ?? "https://api.hetzner.cloud/v1";
    // terraform-provider-hcloud validates the token length (64 characters).
    if (!token) throw new ProviderError("hcloud: token is required: pulumi config set --secret hcloud:token <token> (or HCLOUD_TOKEN)");
    if (String(token).length !== 64) throw new ProviderError("hcloud: token must be exactly 64 characters long");
    return { token, endpoint };
  },
  invokes: {
    // data "hcloud_servers" (internal/server/data_source.go dataSourceHcloudServerListRead):
    // Server.AllWithOpts with the label selector and statuses (GET /servers?label_selector=
    // …&status=…, every page), each server as the resource's attributes, the id a hash of
    // the ids (datasourceutil.ListID). Used by the workspace stack's power check (issue 21
    // item 2); not in the recordings of the real provider yet (known-differences.ts).
    "hcloud:index/getServers:getServers": async (ctx, args) => {
      const q = new URLSearchParams();
      if (args.withSelector) q.set("label_selector", String(args.withSelector));
      for (const st of (args.withStatuses as string[] | undefined) ?? []) q.append("status", st);
      const all: Props[] = [];
      for (let pageNo = 1; ; pageNo++) {
        q.set("page", String(pageNo));
        q.set("per_page", "50");
        const res = await api(ctx, "GET", `/servers?${q}`);
        all.push(...((res.servers as Props[]) ?? []));
        if (!(res.meta as Props | undefined)?.pagination || !((res.meta as Props).pagination as Props).next_page) break;
      }
      const ids = all.map((x) => String(x.id));
      // The data source's schema (terraform-provider-hcloud hcloud_servers, recorded with the real
      // provider): no resource-only fields (userData, publicNets, keepDisk, shutdownBeforeDeletion,
      // ignoreRemoteFirewallIds, allowDeprecatedImages); iso, rescue and datacenter as "", the
      // location from the server's own location.
      const servers = all.map((x) => {
        const out = serverOuts(x, {});
        return {
          backupWindow: out.backupWindow,
          backups: out.backups,
          datacenter: "",
          deleteProtection: out.deleteProtection,
          firewallIds: out.firewallIds,
          id: Number(x.id),
          image: (x.image as Props | undefined)?.name ?? "",
          ipv4Address: out.ipv4Address,
          ipv6Address: out.ipv6Address,
          ipv6Network: out.ipv6Network,
          iso: "",
          labels: out.labels,
          location: ((x.location as Props | undefined)?.name as string | undefined) ?? (((x.datacenter as Props | undefined)?.location as Props | undefined)?.name as string | undefined) ?? "",
          name: out.name,
          networks: [],
          placementGroupId: out.placementGroupId,
          primaryDiskSize: out.primaryDiskSize,
          rebuildProtection: out.rebuildProtection,
          rescue: "",
          serverType: out.serverType,
          status: out.status,
        };
      });
      return { id: createHash("sha1").update(ids.join("")).digest("hex"), servers, ...(args.withSelector !== undefined ? { withSelector: args.withSelector } : {}), ...(args.withStatuses !== undefined ? { withStatuses: args.withStatuses } : {}) };
    },
  },
  // Recorded (faults.jsonl, pulumi-hcloud via the Terraform bridge): a data source's error is
  // "invoking <token>: " and the SDKv2 diagnostics list.
  invokeErrorText: (err, tok) => `invoking ${tok}: 1 error occurred:\n\t* ${err.message}\n\n`,
  resources: {
    "hcloud:index/sshKey:SshKey": sshKey,
    "hcloud:index/firewall:Firewall": firewall,
    "hcloud:index/server:Server": server,
    "hcloud:index/volume:Volume": volume,
    "hcloud:index/volumeAttachment:VolumeAttachment": volumeAttachment,
  },
});
