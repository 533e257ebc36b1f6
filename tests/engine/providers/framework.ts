/**
 * A small Pulumi resource-provider server for the engine lane's provider doubles.
 *
 * It speaks the engine's gRPC protocol (pulumirpc.ResourceProvider) through the
 * generated stubs @pulumi/pulumi ships (proto/provider_grpc_pb.js) rather than through
 * `@pulumi/pulumi/provider`'s `main()`, because that server cannot express what the
 * real providers answer (measured against the real hcloud provider, see README.md):
 *   - its DiffResult has no `diffs`/`detailedDiff`, which the real providers fill;
 *   - its Configure ignores the provider's config (hcloud:token, hcloud:endpoint…);
 *   - it never asks the engine to send old inputs, so Diff would only see old outputs.
 * Everything else (value encoding, secrets, unknowns) follows the wire format the SDK
 * itself uses (sdk/nodejs/runtime/rpc.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { createRequire } from "node:module";
import { appendFileSync } from "node:fs";

const require = createRequire(import.meta.url);
// Generated CommonJS stubs; typed loosely on purpose (the .d.ts are class-heavy).
/* eslint-disable @typescript-eslint/no-explicit-any */
const provproto: any = require("@pulumi/pulumi/proto/provider_pb.js");
const provrpc: any = require("@pulumi/pulumi/proto/provider_grpc_pb.js");
const pluginproto: any = require("@pulumi/pulumi/proto/plugin_pb.js");
const engineproto: any = require("@pulumi/pulumi/proto/engine_pb.js");
const enginerpc: any = require("@pulumi/pulumi/proto/engine_grpc_pb.js");
const structproto: any = require("google-protobuf/google/protobuf/struct_pb.js");
const emptyproto: any = require("google-protobuf/google/protobuf/empty_pb.js");
const anyproto: any = require("google-protobuf/google/protobuf/any_pb.js");
const statusproto: any = require("@pulumi/pulumi/proto/status_pb.js");

export const SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17";
export const ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Props = Record<string, any>;

/** A user-facing provider error (the engine prints its message as the step's failure). */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProviderError";
  }
}

/**
 * The resource exists but failed to initialise (e.g. the server was created and its
 * action failed): the engine keeps it in state with the error, as the bridge reports a
 * Terraform create that failed after SetId. Without this the resource would be orphaned.
 */
export class PartialCreateError extends ProviderError {
  constructor(
    message: string,
    readonly id: string,
    readonly outs: Props,
  ) {
    super(message);
    this.name = "PartialCreateError";
  }
}

// ---------------------------------------------------------------------------------
// Values: secrets are unwrapped for the provider's logic and the secret paths
// remembered, so outputs can be wrapped again.

export function isSecret(v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && (v as Props)[SIG] === SECRET_SIG;
}

/** Deep copy with every secret unwrapped; `secretKeys` gets the top-level keys that held one. */
export function reveal(props: Props, secretKeys?: Set<string>): Props {
  const walk = (v: unknown, top?: string): unknown => {
    if (isSecret(v)) {
      if (top !== undefined) secretKeys?.add(top);
      return walk(v.value, top);
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, top));
    if (v && typeof v === "object") {
      if ((v as Props)[SIG] === ASSET_SIG || (v as Props)[SIG] === ARCHIVE_SIG) return v;
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, top)]));
    }
    return v;
  };
  return Object.fromEntries(Object.entries(props ?? {}).map(([k, v]) => [k, walk(v, k)]));
}

/** A path into a value: object keys and list indexes (["triggers", 0], ["environment", "API_KEY"]). */
export type PropPath = Array<string | number>;

/** Where secrets sit in `props`: their paths, inside objects and lists (a secret list element stays an element). */
export function secretPaths(props: Props): PropPath[] {
  const out: PropPath[] = [];
  const walk = (v: unknown, path: PropPath) => {
    if (isSecret(v)) return void out.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === "object" && (v as Props)[SIG] !== ASSET_SIG && (v as Props)[SIG] !== ARCHIVE_SIG) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(props, []);
  return out;
}

/**
 * Wraps, in a copy of `props`, the values found at `paths` (nested secrets stay nested:
 * the deepest paths are wrapped first, so a secret inside a secret object keeps its own
 * wrapper, as pulumi-go-provider's applySecrets leaves `connection.privateKey`).
 */
export function wrapPaths(props: Props, paths: PropPath[]): Props {
  const copy = JSON.parse(JSON.stringify(props ?? {})) as Props;
  for (const path of [...paths].sort((a, b) => b.length - a.length)) {
    if (path.length === 0) continue;
    let at: any = copy;
    for (const k of path.slice(0, -1)) at = at && typeof at === "object" && !isSecret(at) ? at[k] : undefined;
    const last = path[path.length - 1]!;
    if (at && typeof at === "object" && !isSecret(at) && last in at && at[last] !== UNKNOWN && at[last] !== undefined && at[last] !== null && !isSecret(at[last])) at[last] = secret(at[last]);
  }
  return copy;
}

export function secret(v: unknown): unknown {
  return v === undefined || v === null ? v : { [SIG]: SECRET_SIG, value: v };
}

export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

/** Deep equality on plain JSON values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}
function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Props)[k])]));
  return v;
}

// ---------------------------------------------------------------------------------
// Resource definitions

export interface Ctx {
  config: Props;
  preview: boolean;
  urn: string;
  name: string;
  type: string;
  log(severity: "debug" | "info" | "warning" | "error", message: string): Promise<void>;
}

export interface DiffAnswer {
  /** Top-level properties that differ. */
  diffs: string[];
  /** The ones among them that force replacement. */
  replaces: string[];
  deleteBeforeReplace?: boolean;
  /** Kind per property path (default: UPDATE, or UPDATE_REPLACE when in replaces). */
  detailedDiff?: Record<string, "ADD" | "ADD_REPLACE" | "DELETE" | "DELETE_REPLACE" | "UPDATE" | "UPDATE_REPLACE">;
}

export interface ResourceDef {
  /** Returns the checked inputs (defaults applied) or throws failures. */
  check(ctx: Ctx, news: Props, olds: Props, randomSeed: Buffer): { inputs: Props; failures?: { property: string; reason: string }[] };
  diff(ctx: Ctx, id: string, oldOutputs: Props, news: Props, oldInputs: Props): DiffAnswer;
  create(ctx: Ctx, inputs: Props): Promise<{ id: string; outs: Props }>;
  /** null: the resource is gone (the engine drops it from state). */
  read(ctx: Ctx, id: string, outs: Props, inputs: Props): Promise<{ id: string; outs: Props; inputs: Props } | null>;
  update(ctx: Ctx, id: string, oldOutputs: Props, news: Props, oldInputs: Props): Promise<Props>;
  delete(ctx: Ctx, id: string, outs: Props, oldInputs: Props): Promise<void>;
  /**
   * How the real provider words a failed Create, Update or Delete (recorded: the bridge
   * wraps an SDKv2 resource's and a plugin-framework resource's diagnostics differently).
   * Unset: the error's own message.
   */
  errorText?: (err: Error, method: "Create" | "Update" | "Delete", urn: string) => string;
  /** Output keys the provider's schema marks secret (always wrapped). */
  secretOutputs?: string[];
  /**
   * With `secretsByPath`: the property paths the provider's schema marks secret
   * (pulumi-go-provider `provider:"secret"`, applied by infer's applySecrets in Check and
   * kept by the outputs that mirror the inputs), wrapped wherever present in the checked
   * inputs, the outputs and a Read's inputs, nested ones inside their parent's wrapper.
   */
  schemaSecrets?: PropPath[];
  /**
   * Secrets stay where they were in the inputs, nested ones included (environment.X), in
   * the checked inputs, the outputs and a Read's inputs: recorded with the real
   * pulumi-command 1.2.1 local Command (recordings/workspace-lifecycle.jsonl).
   */
  secretsByPath?: boolean;
  /** A preview's Create answers the id already (recorded: pulumi-command's local Command). */
  previewId?: boolean;
  /**
   * How the real provider shapes its Diff answer, as recorded (tests/engine/recordings/):
   * `stables` (the ForceNew properties: the bridge answers those this diff does not replace; the engine keeps
   * them known in a preview), whether `hasDetailedDiff` is set when nothing changed, and
   * whether detailed entries carry `inputDiff`. Default: detailed diff always, inputDiff set.
   */
  diffShape?: { stables?: string[]; detailedDiffWhenNone?: boolean; detailedDiff?: boolean; inputDiff?: boolean };
  /** The outputs carry the resource id as an `id` property (the Terraform bridge does). */
  idProperty?: boolean;
}

export interface ProviderDef {
  name: string;
  version: string;
  /**
   * Bridged (Terraform) providers answer outputs without the input's secret wrappers
   * (the engine re-applies secretness from the inputs): only schema-secret outputs are
   * wrapped. Recorded with the real hcloud provider (userData's hash came back plain).
   */
  bridged?: boolean;
  /**
   * The Configure answer, as recorded with the real providers: the bridged hcloud and
   * tailscale providers do NOT accept secrets (the engine sends them bare and re-marks
   * secret outputs itself), both support autonaming configuration, tailscale accepts
   * resources; pulumi-command accepts secrets, resources and outputs.
   */
  configureAnswer?: { acceptSecrets: boolean; acceptResources: boolean; acceptOutputs: boolean; supportsAutonamingConfiguration: boolean };
  /** Validates and stores the provider config (`hcloud:token` arrives as `token`). */
  configure(vars: Props): Props | Promise<Props>;
  resources: Record<string, ResourceDef>;
  invokes?: Record<string, (ctx: Ctx, args: Props) => Promise<Props>>;
  /** How a failed data source reads in the real provider's error (the bridge wraps the diagnostics). */
  invokeErrorText?: (err: Error, tok: string) => string;
}

// ---------------------------------------------------------------------------------
// Server

function toStruct(obj: Props | undefined): any {
  return structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(obj ?? {})));
}

function kindOf(k: string): number {
  const K = provproto.PropertyDiff.Kind;
  return K[k] ?? K.UPDATE;
}

function grpcError(err: unknown, wrapOuts?: (outs: Props) => Props): grpc.ServiceError {
  const message = err instanceof Error ? err.message : String(err);
  const e = new Error(message) as grpc.ServiceError;
  e.code = grpc.status.UNKNOWN;
  e.details = message;
  e.metadata = new grpc.Metadata();
  if (err instanceof PartialCreateError) {
    const detail = new provproto.ErrorResourceInitFailed();
    detail.setId(err.id);
    detail.setProperties(toStruct(wrapOuts ? wrapOuts(err.outs) : err.outs));
    detail.setReasonsList([message]);
    const any = new anyproto.Any();
    any.pack(detail.serializeBinary(), "pulumirpc.ErrorResourceInitFailed");
    const st = new statusproto.Status();
    st.setCode(grpc.status.UNKNOWN);
    st.setMessage(message);
    st.addDetails(any);
    e.metadata.add("grpc-status-details-bin", Buffer.from(st.serializeBinary()));
  }
  return e;
}

/** The bridge answers every state with its `id` property (tfbridge MakeTerraformResult). */
function withId(r: ResourceDef, outs: Props, id: string): Props {
  return r.idProperty ? { ...outs, id } : outs;
}

/**
 * Bridged providers keep `__defaults` (the bridge's record of defaulted inputs) in the
 * checked inputs only: outputs never carry it, and a Read's inputs carry it only when it
 * names a property (recorded with the real hcloud provider, tests/engine/recordings/).
 */
function bridgeOutputs(def: ProviderDef, outs: Props): Props {
  if (!def.bridged || !("__defaults" in outs)) return outs;
  const { __defaults: _d, ...rest } = outs;
  return rest;
}
function bridgeReadInputs(def: ProviderDef, inputs: Props): Props {
  if (!def.bridged || !Array.isArray(inputs.__defaults) || inputs.__defaults.length > 0) return inputs;
  const { __defaults: _d, ...rest } = inputs;
  return rest;
}

function nameOf(urn: string): string {
  return urn.split("::").pop() ?? urn;
}
function typeOf(urn: string): string {
  return urn.split("::")[2]?.split("$").pop() ?? "";
}

/** Serves `def` and prints the port, as every Pulumi plugin does; returns when listening. */
export async function serve(def: ProviderDef, args: string[]): Promise<void> {
  // Flags (e.g. the lane's --picortex-lane=<dir> marker) are not the engine address.
  const engineAddr = args.find((a) => !a.startsWith("-"));
  const engine = engineAddr ? new enginerpc.EngineClient(engineAddr, grpc.credentials.createInsecure()) : undefined;
  const trace = process.env.PICORTEX_PROVIDER_TRACE;
  let config: Props = {};

  const mkCtx = (urn: string, preview: boolean): Ctx => ({
    config,
    preview,
    urn,
    name: nameOf(urn),
    type: typeOf(urn),
    log: (severity, message) =>
      new Promise((resolve) => {
        if (!engine) return resolve();
        const req = new engineproto.LogRequest();
        req.setSeverity({ debug: 0, info: 1, warning: 2, error: 3 }[severity]);
        req.setMessage(message);
        req.setUrn(urn);
        engine.log(req, () => resolve());
      }),
  });
  const resourceFor = (urn: string): ResourceDef => {
    const t = typeOf(urn);
    const r = def.resources[t];
    if (!r) throw new ProviderError(`${def.name} provider double: unknown resource type ${t} (add it to tests/engine/providers/${def.name}.ts)`);
    return r;
  };
  const record = (method: string, req: unknown, res: unknown) => {
    if (trace) appendFileSync(trace, JSON.stringify({ provider: def.name, method, req, res }) + "\n");
  };
  /** Wraps outputs: schema-secret keys, keys whose input was secret, or everything. */
  const wrapOutputs = (r: ResourceDef, outs: Props, secretInputs: Set<string>, paths?: PropPath[]): Props => {
    if (r.secretsByPath && paths) {
      const byPath = wrapPaths(outs, [...paths, ...(r.schemaSecrets ?? [])]);
      return Object.fromEntries(Object.entries(byPath).map(([k, v]) => [k, (r.secretOutputs ?? []).includes(k) && v !== UNKNOWN && !isSecret(v) ? secret(v) : v]));
    }
    return Object.fromEntries(
      Object.entries(outs).map(([k, v]) => {
        const s = (r.secretOutputs ?? []).includes(k) || (!def.bridged && secretInputs.has(k));
        return [k, s && v !== UNKNOWN ? secret(v) : v];
      }),
    );
  };

  const unary =
    (method: string, fn: (req: any) => Promise<any>) =>
    (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      fn(call.request)
        .then((res) => cb(null, res))
        .catch((err) => {
          if (err instanceof Error && (method === "Create" || method === "Update" || method === "Delete")) {
            const text = resourceFor(call.request.getUrn()).errorText;
            if (text) err.message = text(err, method, call.request.getUrn());
          }
          record(method, { urn: call.request?.getUrn?.() }, { error: String(err?.message ?? err) });
          let wrap: ((o: Props) => Props) | undefined;
          if (err instanceof PartialCreateError) {
            const secrets = new Set<string>();
            reveal(call.request.getProperties()?.toJavaScript() ?? {}, secrets);
            wrap = (o) => wrapOutputs(resourceFor(call.request.getUrn()), o, secrets);
          }
          cb(grpcError(err, wrap));
        });
    };

  const impl = {
    getPluginInfo: unary("GetPluginInfo", async () => {
      const r = new pluginproto.PluginInfo();
      r.setVersion(def.version);
      return r;
    }),
    getSchema: unary("GetSchema", async () => {
      const r = new provproto.GetSchemaResponse();
      r.setSchema("{}");
      return r;
    }),
    checkConfig: unary("CheckConfig", async (req) => {
      const r = new provproto.CheckResponse();
      r.setInputs(req.getNews());
      return r;
    }),
    diffConfig: unary("DiffConfig", async () => {
      const r = new provproto.DiffResponse();
      r.setChanges(provproto.DiffResponse.DiffChanges.DIFF_NONE);
      return r;
    }),
    configure: unary("Configure", async (req) => {
      const vars: Props = {};
      req.getVariablesMap().forEach((v: string, k: string) => {
        // Keys arrive as "<pkg>:config:<key>"; values are JSON-encoded when not strings.
        const key = k.split(":").pop()!;
        vars[key] = v;
      });
      const args = req.hasArgs() ? reveal(req.getArgs().toJavaScript()) : {};
      config = await def.configure({ ...vars, ...args });
      record("Configure", Object.keys(vars), "ok");
      const r = new provproto.ConfigureResponse();
      const a = def.configureAnswer ?? { acceptSecrets: true, acceptResources: false, acceptOutputs: false, supportsAutonamingConfiguration: false };
      r.setAcceptsecrets(a.acceptSecrets);
      r.setSupportspreview(true);
      r.setAcceptresources(a.acceptResources);
      r.setAcceptoutputs(a.acceptOutputs);
      r.setSupportsAutonamingConfiguration(a.supportsAutonamingConfiguration);
      return r;
    }),
    check: unary("Check", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const secrets = new Set<string>();
      const news = reveal(req.getNews()?.toJavaScript() ?? {}, secrets);
      const olds = reveal(req.getOlds()?.toJavaScript() ?? {});
      const seed = Buffer.from(req.getRandomseed_asU8?.() ?? []);
      const { inputs, failures } = r.check(mkCtx(urn, true), news, olds, seed);
      // Bridged providers answer Check with the values bare (recorded: hcloud's userData);
      // the engine keeps them secret from the program's side.
      const wrapped = r.secretsByPath
        ? wrapPaths(inputs, [...secretPaths(req.getNews()?.toJavaScript() ?? {}), ...(r.schemaSecrets ?? [])])
        : def.bridged
          ? inputs
          : Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, secrets.has(k) ? secret(v) : v]));
      record("Check", { urn, news: Object.keys(news) }, { inputs: Object.keys(inputs), failures });
      const res = new provproto.CheckResponse();
      res.setInputs(toStruct(wrapped));
      res.setFailuresList(
        (failures ?? []).map((f) => {
          const cf = new provproto.CheckFailure();
          cf.setProperty(f.property);
          cf.setReason(f.reason);
          return cf;
        }),
      );
      return res;
    }),
    diff: unary("Diff", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const olds = reveal(req.getOlds()?.toJavaScript() ?? {});
      const news = reveal(req.getNews()?.toJavaScript() ?? {});
      const oldInputs = req.hasOldInputs() ? reveal(req.getOldInputs().toJavaScript()) : olds;
      const d = r.diff(mkCtx(urn, true), req.getId(), olds, news, oldInputs);
      const res = new provproto.DiffResponse();
      const DC = provproto.DiffResponse.DiffChanges;
      res.setChanges(d.diffs.length > 0 ? DC.DIFF_SOME : DC.DIFF_NONE);
      res.setDiffsList(d.diffs);
      res.setReplacesList(d.replaces);
      res.setDeletebeforereplace(!!d.deleteBeforeReplace && d.replaces.length > 0);
      const shape = r.diffShape ?? {};
      // The bridge's stables are the ForceNew properties that are NOT replaced by this diff
      // (pulumi-terraform-bridge pkg/tfbridge/provider.go Diff: "For all properties that are
      // ForceNew, but didn't change, assume they are stable": `!replaced[name] && sch.ForceNew()`).
      // Recorded (recordings/replace.jsonl): a userData replace drops userData from the
      // server's stables, an image change drops image, a new serverId drops serverId from the
      // attachment's. `shape.stables` lists the ForceNew properties.
      res.setStablesList((shape.stables ?? []).filter((k) => !d.replaces.includes(k)));
      const detailedOn = shape.detailedDiff ?? true;
      res.setHasdetaileddiff(detailedOn && (d.diffs.length > 0 || (shape.detailedDiffWhenNone ?? true)));
      const detailed = res.getDetaileddiffMap();
      for (const k of detailedOn ? d.diffs : []) {
        const pd = new provproto.PropertyDiff();
        pd.setKind(kindOf(d.detailedDiff?.[k] ?? (d.replaces.includes(k) ? "UPDATE_REPLACE" : "UPDATE")));
        pd.setInputdiff(shape.inputDiff ?? true);
        detailed.set(k, pd);
      }
      record("Diff", { urn, id: req.getId() }, d);
      return res;
    }),
    create: unary("Create", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const secrets = new Set<string>();
      const inputs = reveal(req.getProperties()?.toJavaScript() ?? {}, secrets);
      const preview = req.getPreview();
      const { id, outs } = await r.create(mkCtx(urn, preview), inputs);
      record("Create", { urn, preview }, { id });
      const res = new provproto.CreateResponse();
      res.setId(preview && !r.previewId ? "" : id);
      res.setProperties(toStruct(wrapOutputs(r, withId(r, bridgeOutputs(def, outs), preview ? UNKNOWN : id), secrets, secretPaths(req.getProperties()?.toJavaScript() ?? {}))));
      return res;
    }),
    read: unary("Read", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const secrets = new Set<string>();
      const outs = reveal(req.getProperties()?.toJavaScript() ?? {}, secrets);
      const inputs = req.hasInputs() ? reveal(req.getInputs().toJavaScript(), secrets) : {};
      const got = await r.read(mkCtx(urn, false), req.getId(), outs, inputs);
      record("Read", { urn, id: req.getId() }, got ? { id: got.id } : { gone: true });
      const res = new provproto.ReadResponse();
      if (!got) return res; // empty id: deleted outside Pulumi
      res.setId(got.id);
      // Recorded (pulumi-command): the outputs keep the secrets where the state's outputs had
      // them (the whole environment map), the inputs where the state's inputs had them
      // (environment.API_KEY), even though both hold the same values.
      const outPaths = secretPaths(req.getProperties()?.toJavaScript() ?? {});
      const inPaths = req.hasInputs() ? secretPaths(req.getInputs().toJavaScript()) : outPaths;
      res.setProperties(toStruct(wrapOutputs(r, withId(r, bridgeOutputs(def, got.outs), got.id), secrets, outPaths)));
      const readInputs = bridgeReadInputs(def, got.inputs);
      res.setInputs(toStruct(r.secretsByPath ? wrapPaths(readInputs, [...inPaths, ...(r.schemaSecrets ?? [])]) : Object.fromEntries(Object.entries(readInputs).map(([k, v]) => [k, secrets.has(k) ? secret(v) : v]))));
      return res;
    }),
    update: unary("Update", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const secrets = new Set<string>();
      const olds = reveal(req.getOlds()?.toJavaScript() ?? {});
      const news = reveal(req.getNews()?.toJavaScript() ?? {}, secrets);
      const oldInputs = req.hasOldInputs() ? reveal(req.getOldInputs().toJavaScript()) : olds;
      const preview = req.getPreview();
      const outs = await r.update(mkCtx(urn, preview), req.getId(), olds, news, oldInputs);
      record("Update", { urn, id: req.getId(), preview }, "ok");
      const res = new provproto.UpdateResponse();
      res.setProperties(toStruct(wrapOutputs(r, withId(r, bridgeOutputs(def, outs), req.getId()), secrets, secretPaths(req.getNews()?.toJavaScript() ?? {}))));
      return res;
    }),
    delete: unary("Delete", async (req) => {
      const urn = req.getUrn();
      const r = resourceFor(urn);
      const outs = reveal(req.getProperties()?.toJavaScript() ?? {});
      const oldInputs = req.hasOldInputs() ? reveal(req.getOldInputs().toJavaScript()) : outs;
      await r.delete(mkCtx(urn, false), req.getId(), outs, oldInputs);
      record("Delete", { urn, id: req.getId() }, "ok");
      return new emptyproto.Empty();
    }),
    invoke: unary("Invoke", async (req) => {
      const tok = req.getTok();
      const fn = def.invokes?.[tok];
      if (!fn) throw new ProviderError(`${def.name} provider double: unknown function ${tok}`);
      let out: Props;
      try {
        out = await fn(mkCtx("", req.getPreview?.() ?? false), reveal(req.getArgs()?.toJavaScript() ?? {}));
      } catch (err) {
        throw def.invokeErrorText && err instanceof Error ? new ProviderError(def.invokeErrorText(err, tok)) : err;
      }
      record("Invoke", { tok }, "ok");
      const res = new provproto.InvokeResponse();
      res.setReturn(toStruct(out));
      return res;
    }),
    cancel: unary("Cancel", async () => new emptyproto.Empty()),
    attach: unary("Attach", async () => new emptyproto.Empty()),
    getMapping: unary("GetMapping", async () => {
      const r = new provproto.GetMappingResponse();
      r.setProvider("");
      return r;
    }),
    getMappings: unary("GetMappings", async () => new provproto.GetMappingsResponse()),
  };

  const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
  server.addService(provrpc.ResourceProviderService, impl as any);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.stdout.write(`${port}\n`);
  // The engine closes our stdin-less process by killing it; nothing else to do.
}

// ---------------------------------------------------------------------------------
// Helpers shared by the doubles

/**
 * Compares each listed property of the checked new inputs with the old state, after
 * `normalise` (default: identity). `forceNew` properties that differ go in replaces.
 */
export function diffProps(
  keys: readonly string[],
  forceNew: readonly string[],
  olds: Props,
  news: Props,
  normalise: Record<string, (v: unknown) => unknown> = {},
): DiffAnswer {
  const diffs: string[] = [];
  const detailedDiff: DiffAnswer["detailedDiff"] = {};
  for (const k of keys) {
    const n = normalise[k] ?? ((v: unknown) => v);
    const a = n(olds[k]);
    const b = n(news[k]);
    if (containsUnknown(news[k]) || !deepEqual(a, b)) {
      diffs.push(k);
      const rep = forceNew.includes(k);
      const absentOld = a === undefined || a === null;
      const absentNew = b === undefined || b === null;
      detailedDiff[k] = absentOld ? (rep ? "ADD_REPLACE" : "ADD") : absentNew ? (rep ? "DELETE_REPLACE" : "DELETE") : rep ? "UPDATE_REPLACE" : "UPDATE";
    }
  }
  return { diffs, replaces: diffs.filter((k) => forceNew.includes(k)), detailedDiff };
}

/** Fills `outs` keys that are unknown until the resource exists (preview). */
export function unknowns(keys: readonly string[]): Props {
  return Object.fromEntries(keys.map((k) => [k, UNKNOWN]));
}
