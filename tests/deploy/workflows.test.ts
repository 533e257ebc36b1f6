import { describe, it, expect } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { DEFAULT_WORKSPACE_PROJECT } from "../../stacks/chat/stack-reference.js";

const dir = resolve(import.meta.dirname, "../../.github/workflows");
type Step = { uses?: string; run?: string; with?: Record<string, unknown>; name?: string };
type Job = { "runs-on": string; if?: string; needs?: string | string[]; steps: Step[]; environment?: string; "timeout-minutes"?: number };
type Workflow = { name: string; on: Record<string, unknown>; permissions: Record<string, string>; concurrency?: { group: string; "cancel-in-progress": boolean }; env?: Record<string, string>; jobs: Record<string, Job> };

const files = readdirSync(dir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"));
const load = (name: string): Workflow => parseYaml(readFileSync(join(dir, name), "utf8")) as Workflow;
const allSteps = (wf: Workflow) => Object.values(wf.jobs).flatMap((j) => j.steps);
const pulumiSteps = (wf: Workflow) => allSteps(wf).filter((s) => s.uses?.startsWith("pulumi/actions@"));

describe("GitHub workflows", () => {
  it("has the three workflows", () => {
    expect(files.sort()).toEqual(["pulumi-destroy.yml", "pulumi-preview.yml", "pulumi-up.yml"]);
  });

  it.each(files)("%s pins every action to a full commit SHA with a version comment (issue 21 item 20: a tag can be moved)", (file) => {
    const text = readFileSync(join(dir, file), "utf8");
    const uses = allSteps(load(file)).filter((s) => s.uses).map((s) => s.uses!);
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) {
      const [, ref] = u.split("@");
      const sha = /^[0-9a-f]{40}$/.test(ref ?? "");
      expect(sha, `${file}: ${u}`).toBe(true);
      if (sha) expect(text).toMatch(new RegExp(`${u.replace(/[/.]/g, "\\$&")} # v\\d+\\.\\d+\\.\\d+`));
    }
  });

  it.each(files)("%s grants least privilege and hands credentials only to the steps that use them (issue 21 item 20)", (file) => {
    const wf = load(file);
    expect(wf.permissions).toBeDefined();
    expect(wf.permissions.contents).toBe("read");
    for (const [k, v] of Object.entries(wf.permissions)) {
      if (v === "write") expect(`${file}:${k}`).toBe("pulumi-preview.yml:pull-requests");
    }
    // No secret at workflow or job level: `npm install` (package scripts a PR can change) sees none.
    expect(JSON.stringify(wf.env ?? {}), file).not.toContain("secrets.");
    for (const job of Object.values(wf.jobs)) expect(JSON.stringify((job as { env?: unknown }).env ?? {}), file).not.toContain("secrets.");
    for (const step of allSteps(wf)) {
      const env = (step as Step & { env?: Record<string, string> }).env ?? {};
      if (step.run?.startsWith("npm ") || step.run?.includes("scripts/bundle.ts")) expect(JSON.stringify(env), `${file}: ${step.run}`).not.toContain("secrets.");
    }
    for (const step of pulumiSteps(wf).filter((s) => s.with?.command)) {
      const env = (step as Step & { env?: Record<string, string> }).env ?? {};
      for (const key of ["PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"]) expect(env[key], `${file} ${key}`).toBe(`\${{ secrets.${key} }}`);
      // Previews of pull requests get read-only cloud credentials; up/destroy the write ones.
      const preview = step.with!.command === "preview";
      expect(env.HCLOUD_TOKEN, file).toBe(preview ? "${{ secrets.HCLOUD_READ_TOKEN }}" : "${{ secrets.HCLOUD_TOKEN }}");
      expect(env.TAILSCALE_OAUTH_CLIENT_ID, file).toBe(preview ? "${{ secrets.TAILSCALE_READ_OAUTH_CLIENT_ID }}" : "${{ secrets.TAILSCALE_OAUTH_CLIENT_ID }}");
      // One Tailscale credential kind (item 4): never an API key next to the OAuth client.
      expect(Object.keys(env)).not.toContain("TAILSCALE_API_KEY");
    }
    // Write credentials only in jobs bound to the protected environment.
    for (const job of Object.values(wf.jobs)) {
      if (JSON.stringify(job.steps).includes("secrets.HCLOUD_TOKEN }}")) expect(job.environment, file).toBe("production");
    }
    const text = readFileSync(join(dir, file), "utf8");
    expect(text).not.toMatch(/pull_request_target/);
    expect(text).not.toMatch(/write-all/);
  });

  it.each(files)("%s supports Pulumi Cloud and self-managed backends on every pulumi/actions command", (file) => {
    for (const step of pulumiSteps(load(file)).filter((s) => s.with?.command)) {
      expect(step.with!["cloud-url"]).toBe("${{ vars.PULUMI_BACKEND_URL }}");
      expect(step.with!["stack-name"]).toBe("${{ vars.WORKSPACE_STACK }}");
      expect(step.with!["work-dir"]).toBe(".");
      // That directory holds the workspace project the chat stacks reference by name.
      const project = parseYaml(readFileSync(join(dir, "../..", String(step.with!["work-dir"]), "Pulumi.yaml"), "utf8")) as { name: string };
      expect(project.name).toBe(DEFAULT_WORKSPACE_PROJECT);
    }
  });

  it.each(files)("%s never splices expressions into run scripts (script injection)", (file) => {
    for (const step of allSteps(load(file))) if (step.run) expect(step.run, `${file}: ${step.run}`).not.toContain("${{");
  });

  it.each(files)("%s checks out without persisting credentials and installs the locked dependencies", (file) => {
    for (const job of Object.values(load(file).jobs)) {
      const checkout = job.steps.find((s) => s.uses?.startsWith("actions/checkout@"));
      if (!checkout) continue;
      expect(checkout.with?.["persist-credentials"]).toBe(false);
      expect(job.steps.some((s) => s.run?.startsWith("npm install --no-audit --no-fund"))).toBe(true);
    }
  });
});

describe("preview on pull requests", () => {
  const wf = load("pulumi-preview.yml");
  it("runs on pull_request with a PR comment and a diff", () => {
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    expect(wf.permissions["pull-requests"]).toBe("write");
    const [step] = pulumiSteps(wf);
    expect(step!.with).toMatchObject({ command: "preview", "comment-on-pr": true, diff: true, "github-token": "${{ secrets.GITHUB_TOKEN }}" });
  });
  it("skips fork pull requests (read-only token, no secrets) with a notice", () => {
    expect(wf.jobs.preview!.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
    expect(wf.jobs["fork-notice"]!.if).toBe("github.event.pull_request.head.repo.full_name != github.repository");
    expect(wf.jobs["fork-notice"]!.steps[0]!.run).toContain("::notice::");
  });
  it("bundles the release before previewing", () => {
    const steps = wf.jobs.preview!.steps;
    const bundle = steps.findIndex((s) => s.run?.includes("scripts/bundle.ts"));
    const preview = steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@"));
    expect(bundle).toBeGreaterThan(-1);
    expect(bundle).toBeLessThan(preview);
  });
});

describe("up on merge to main", () => {
  const wf = load("pulumi-up.yml");
  it("runs on push to main, serialized with destroy, joined to the tailnet first", () => {
    expect(wf.on.push).toEqual({ branches: ["main"] });
    expect(wf.concurrency).toEqual({ group: "pulumi-workspace", "cancel-in-progress": false });
    const steps = wf.jobs.up!.steps;
    const ts = steps.findIndex((s) => s.uses?.startsWith("tailscale/github-action@"));
    const up = steps.findIndex((s) => s.with?.command === "up");
    expect(ts).toBeGreaterThan(-1);
    expect(ts).toBeLessThan(up);
    expect(steps[ts]!.with?.tags).toBe("tag:ci");
  });
});

describe("manual destroy", () => {
  const wf = load("pulumi-destroy.yml");
  it("is manual only and needs the stack name typed to confirm", () => {
    expect(Object.keys(wf.on)).toEqual(["workflow_dispatch"]);
    expect(wf.concurrency?.group).toBe(load("pulumi-up.yml").concurrency?.group);
    for (const job of Object.values(wf.jobs)) expect(job.if).toContain("inputs.confirm == vars.WORKSPACE_STACK");
  });
  it("destroys chats first, then the workspace", () => {
    expect(wf.jobs["destroy-workspace"]!.needs).toBe("destroy-chats");
    expect(wf.jobs["destroy-chats"]!.steps.some((s) => s.run === "npx tsx scripts/chat.ts destroy --all")).toBe(true);
    const destroy = pulumiSteps(wf).find((s) => s.with?.command === "destroy");
    expect(destroy).toBeDefined();
    // Delete protection is lifted only on request, before the destroy, with the stack name from env.
    const ws = wf.jobs["destroy-workspace"]!.steps;
    const lift = ws.findIndex((s) => s.run?.includes("scripts/unprotect.ts"));
    expect(lift).toBeGreaterThan(-1);
    expect((ws[lift] as Step & { if?: string }).if).toBe("inputs.lift-protection");
    expect(ws[lift]!.run).toContain('--stack "$STACK"');
    expect(ws[lift]!.run).not.toContain("${{");
    // Issue 21 item 3: the up that lifts protection targets the server alone, so no deploy
    // step runs and the host is never contacted; the workspace job does not join the tailnet.
    expect(ws[lift]!.run).toBe('npx tsx scripts/unprotect.ts --stack "$STACK"');
    expect(ws.some((s) => s.uses?.startsWith("tailscale/github-action@"))).toBe(false);
    expect(lift).toBeLessThan(ws.findIndex((s) => s.with?.command === "destroy"));
    // The chats job installs the CLI only (no command) for scripts/chat.ts.
    expect(pulumiSteps({ ...wf, jobs: { c: wf.jobs["destroy-chats"]! } }).every((s) => !s.with?.command)).toBe(true);
  });
});
