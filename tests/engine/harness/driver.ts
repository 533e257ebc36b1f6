/**
 * One engine operation in its own Node process: `node --import tsx driver.ts <request.json>`.
 *
 * The Automation API runs the stack's REAL program inline: the program function imports
 * the stack's entry module (stacks/workspace/index.ts, stacks/chat/index.ts), exactly
 * the module `pulumi up` would run through the Node.js language host, and returns its
 * exports as the stack outputs. A fresh process per operation gives every run a fresh
 * module instance (ES modules are evaluated once per process), as the language host does.
 * No language host exists on this machine; with an inline program the CLI calls back
 * into this process for the program, so none is needed.
 *
 * The request names no secret: secrets are set beforehand with `pulumi config set
 * --secret` reading stdin (harness/engine.ts).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation/index.js";

export interface DriverRequest {
  op: "preview" | "up" | "destroy" | "refresh";
  workDir: string;
  projectName: string;
  stackName: string;
  /** Absolute path of the stack's entry module. */
  program: string;
  /** Folder holding the pulumi binary (<root>/bin). */
  pulumiBinDir: string;
  diff?: boolean;
  replace?: string[];
  target?: string[];
  refresh?: boolean;
  expectNoChanges?: boolean;
  resultFile: string;
}

export interface DriverResult {
  ok: boolean;
  error?: string;
  stdout: string;
  stderr: string;
  summary?: { result: string; resourceChanges?: Record<string, number> };
  changeSummary?: Record<string, number>;
  outputs?: Record<string, { value: unknown; secret: boolean }>;
}

async function main(): Promise<void> {
  const req = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as DriverRequest;
  let stdout = "";
  let stderr = "";
  const onOutput = (s: string) => {
    stdout += s;
    process.stdout.write(s);
  };
  const onError = (s: string) => {
    stderr += s;
    process.stderr.write(s);
  };
  const program = async () => {
    // The language host runs main from its own directory (issue 21 item 1): do the same.
    process.chdir(dirname(req.program));
    const mod = (await import(pathToFileURL(req.program).href)) as Record<string, unknown>;
    return { ...mod };
  };
  const result: DriverResult = { ok: false, stdout: "", stderr: "" };
  try {
    const pulumiCommand = await PulumiCommand.get({ root: dirname(req.pulumiBinDir), skipVersionCheck: true });
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: req.stackName, projectName: req.projectName, program },
      { workDir: req.workDir, pulumiCommand, envVars: {} },
    );
    const common = { color: "never" as const, onOutput, onError };
    if (req.op === "preview") {
      const r = await stack.preview({ ...common, diff: req.diff, replace: req.replace, target: req.target, refresh: req.refresh, expectNoChanges: req.expectNoChanges });
      result.changeSummary = r.changeSummary as Record<string, number>;
    } else if (req.op === "up") {
      const r = await stack.up({ ...common, diff: req.diff, replace: req.replace, target: req.target, refresh: req.refresh, expectNoChanges: req.expectNoChanges });
      result.summary = { result: r.summary.result, resourceChanges: r.summary.resourceChanges as Record<string, number> };
      result.outputs = Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, { value: v.secret ? "[secret]" : v.value, secret: !!v.secret }]));
    } else if (req.op === "destroy") {
      const r = await stack.destroy({ ...common, target: req.target, refresh: req.refresh });
      result.summary = { result: r.summary.result, resourceChanges: r.summary.resourceChanges as Record<string, number> };
    } else if (req.op === "refresh") {
      const r = await stack.refresh({ ...common, expectNoChanges: req.expectNoChanges });
      result.summary = { result: r.summary.result, resourceChanges: r.summary.resourceChanges as Record<string, number> };
    }
    result.ok = true;
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  }
  result.stdout = stdout;
  result.stderr = stderr;
  writeFileSync(req.resultFile, JSON.stringify(result));
}

await main();
// The automation API's language server keeps the event loop alive; the result is written.
process.exit(0);
