/**
 * ServerCreationMarker: ties the one-time tailnet auth key to the server's creation
 * (issue 21 item 14). The key expires (default 1 h) and sits in the server's userData;
 * when Hetzner refuses a server create (capacity, a limit, a typo it only finds then),
 * the key stays in state, and an `up` retried an hour later created the server with the
 * expired key: it never joined.
 *
 * The stack looks the server up live on every run (the provider's data source
 * `hcloud.getServers`, see program.ts). While no server with the host name exists, the
 * next `up` is about to create one: this marker (a local Command that runs a fixed,
 * harmless program) takes a fresh value, which goes into the key's rotation hash, so the
 * key is replaced right before the server create and the server boots with a key minted
 * moments earlier. While the server exists, `ignoreChanges` keeps the marker state holds:
 * the key does not rotate (a second `up` changes nothing). A stack deployed before the
 * marker existed gets an empty marker, which leaves the rotation hash as it was.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

export interface ServerCreationMarkerArgs {
  /** Whether the server exists now (live lookup). */
  serverExists: pulumi.Input<boolean>;
}

/** The marker of a creation attempt at `at`. */
export const creationMarker = (at: Date): string => `server creation attempt ${at.toISOString()}`;

export class ServerCreationMarker extends pulumi.ComponentResource {
  readonly command: pulumi.Output<command.local.Command>;
  /** "" while the server exists since before the marker, else the last creation attempt's marker. */
  readonly marker: pulumi.Output<string>;

  constructor(name: string, args: ServerCreationMarkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:host:ServerCreationMarker", name, {}, opts);
    this.command = pulumi.output(args.serverExists).apply(
      (exists) =>
        new command.local.Command(
          `${name}-marker`,
          {
            interpreter: ["node", "-e"],
            create: CREATION_MARKER_CREATE,
            triggers: [exists ? "" : creationMarker(new Date())],
            logging: "stderr",
            addPreviousOutputInEnv: false,
          },
          // The server exists: keep the marker state holds (no step, no key rotation).
          { parent: this, ignoreChanges: exists ? ["triggers"] : [] },
        ),
    );
    this.marker = this.command.apply((c) => c.triggers).apply((t) => String((t ?? [])[0] ?? ""));
    this.registerOutputs({ marker: this.marker });
  }
}

/** Nothing to do: the marker lives in the Command's triggers. A fixed, harmless program. */
export const CREATION_MARKER_CREATE = 'console.error("picortex: a server is about to be created; its tailnet auth key is minted now")';
