/**
 * The fully qualified name of the workspace stack, as a StackReference needs it.
 *
 * Pulumi Cloud: `<org>/<project>/<stack>` where <org> is your organization or user name.
 * Self-managed backends (file://, s3://, azblob://, gs://, postgres): stacks are
 * project-scoped and the first segment is the LITERAL word `organization`.
 * `pulumi.getOrganization()` returns exactly that first segment on both, so the program
 * passes it in; an explicit `workspaceOrg` config overrides it.
 */
export const DEFAULT_WORKSPACE_PROJECT = "picortex";

const SEGMENT = /^[A-Za-z0-9_.-]{1,100}$/;

export class StackNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackNameError";
  }
}

export interface WorkspaceStackRef {
  /** `organization` for self-managed backends, else the Pulumi Cloud org/user. */
  org: string;
  project?: string;
  /** The workspace stack's name (`prod`), or a fully qualified `org/project/stack`. */
  stack: string;
}

export function workspaceStackName(ref: WorkspaceStackRef): string {
  const parts = ref.stack.split("/");
  if (parts.length === 3) {
    for (const p of parts) if (!SEGMENT.test(p)) throw new StackNameError(`workspaceStack ${JSON.stringify(ref.stack)} has an invalid segment ${JSON.stringify(p)}`);
    return ref.stack;
  }
  if (parts.length !== 1) {
    throw new StackNameError(
      `workspaceStack ${JSON.stringify(ref.stack)} must be a stack name (e.g. "prod") or fully qualified "<org>/<project>/<stack>" (self-managed backends: "organization/picortex/prod")`,
    );
  }
  const project = ref.project ?? DEFAULT_WORKSPACE_PROJECT;
  for (const [what, v] of [["workspaceOrg", ref.org], ["workspaceProject", project], ["workspaceStack", ref.stack]] as const) {
    if (!SEGMENT.test(v)) throw new StackNameError(`${what} ${JSON.stringify(v)} may only contain letters, digits, '-', '_' and '.'`);
  }
  return `${ref.org}/${project}/${ref.stack}`;
}
