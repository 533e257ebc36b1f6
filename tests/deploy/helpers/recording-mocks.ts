/**
 * Pulumi mocks that record every registered resource with its real parent and
 * dependency URNs (read from the RegisterResource request the SDK sends), so a test can
 * assert the graph: types, parents, dependsOn, inputs and which inputs are secret.
 * Calls to functions (invokes) are not expected: an unmocked call throws.
 */
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  type: string;
  name: string;
  custom: boolean;
  urn: string;
  parent: string;
  dependencies: string[];
  /** Inputs as the SDK serialized them: secrets appear as `{ [SECRET_SIG]: …, value }`. */
  inputs: Record<string, unknown>;
  /** Resource options the engine acts on (from the RegisterResource request). */
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  /** The `replacementTrigger` option, as plain JSON (undefined when unset). */
  replacementTrigger?: unknown;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export function isSecretValue(v: unknown): boolean {
  return !!v && typeof v === "object" && SECRET_SIG in (v as object);
}

/** Strips secret wrappers for value assertions. */
export function plain(v: unknown): unknown {
  if (isSecretValue(v)) return plain((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  hasReplacementTrigger?(): boolean;
  getReplacementTrigger?(): { toJavaScript(): unknown } | undefined;
}

export async function recordResources(
  stateFor: (r: { type: string; name: string; inputs: Record<string, unknown> }) => Record<string, unknown> = () => ({}),
  project = "picortex",
  stack = "test",
  /** What pulumi.getOrganization() returns: "organization" is what self-managed backends report. */
  organization = "organization",
): Promise<RecordedResource[]> {
  const recorded: RecordedResource[] = [];
  type Meta = Pick<RecordedResource, "parent" | "dependencies" | "custom" | "protect" | "retainOnDelete" | "deleteBeforeReplace" | "ignoreChanges" | "replacementTrigger">;
  const pending = new Map<string, Meta>();
  const onRegister = (req: RegisterRequest) => {
    pending.set(`${req.getType()}::${req.getName()}`, {
      parent: req.getParent(),
      dependencies: req.getDependenciesList(),
      custom: req.getCustom(),
      protect: req.getProtect() === true,
      retainOnDelete: req.getRetainondelete() === true,
      deleteBeforeReplace: req.getDeletebeforereplace(),
      ignoreChanges: req.getIgnorechangesList(),
      replacementTrigger: req.hasReplacementTrigger?.() ? req.getReplacementTrigger?.()?.toJavaScript() : undefined,
    });
  };
  const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
        const meta: Meta = pending.get(`${args.type}::${args.name}`) ?? {
          parent: "",
          dependencies: [],
          custom: !!args.custom,
          protect: false,
          retainOnDelete: false,
          deleteBeforeReplace: false,
          ignoreChanges: [],
        };
        // Same rule as MockMonitor.newUrn, so dependency URNs match.
        const parentType = meta.parent ? meta.parent.split("::")[2]!.split("$").pop()! : "";
        const urn = `urn:pulumi:${stack}::${project}::${parentType ? parentType + "$" : ""}${args.type}::${args.name}`;
        recorded.push({ ...meta, type: args.type, name: args.name, urn, inputs: args.inputs });
        return { id: `${args.name}-id`, state: { ...plain(args.inputs) as object, ...stateFor({ type: args.type, name: args.name, inputs: args.inputs }) } };
      },
      call(args) {
        // The workspace stack's live server lookup (issue 21 items 2 and 14): no server yet.
        if (args.token === "hcloud:index/getServers:getServers") return { id: "none", servers: [] };
        if (args.token === "tailscale:index/getDevices:getDevices") return { id: "-", devices: [] };
        throw new Error(`unexpected invoke ${args.token} in a mocked test`);
      },
  };
  await pulumi.runtime.setMocks(mocks, project, stack, false, organization);
  // The Mocks interface is not told a resource's parent, dependencies or options, so this
  // run's monitor (the public getMonitor()) hands each RegisterResource request to the
  // recorder first. Only this one instance is decorated: the SDK's classes stay as shipped.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, callback: (err: unknown, response: unknown) => void): Promise<void>;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    onRegister(req);
    return register(req, callback);
  };
  return recorded;
}

/** Waits until the SDK has registered everything started so far. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 50));
}

export function byName(resources: RecordedResource[], name: string): RecordedResource {
  const r = resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
  return r;
}
