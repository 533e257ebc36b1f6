/**
 * The chat stack program on a Pulumi Cloud backend (getOrganization() is the org), with
 * the runtimeUrl override and purge-on-delete: its own file, so the program module and
 * the mocks start fresh.
 */
import { describe, it, expect, beforeAll } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { recordResources, settle, byName, plain, type RecordedResource } from "./helpers/recording-mocks.js";

describe("chat stack program on Pulumi Cloud", () => {
  let resources: RecordedResource[];
  beforeAll(async () => {
    resources = await recordResources(
      ({ type }) =>
        type === "pulumi:pulumi:StackReference"
          ? { outputs: { runtimeUrl: "http://picortex:7420", runtimeApiToken: "pct_cloud_token" }, secretOutputNames: ["runtimeApiToken"] }
          : {},
      "picortex-chat",
      "chat-ops",
      "acme",
    );
    pulumi.runtime.setAllConfig({
      "picortex-chat:workspaceStack": "prod",
      "picortex-chat:onDelete": "purge",
      "picortex-chat:runtimeUrl": "http://127.0.0.1:17420",
    });
    await import("../../stacks/chat/index.js");
    await settle();
  });

  it("references <org>/picortex/<stack>", () => {
    expect(plain(resources.find((r) => r.type === "pulumi:pulumi:StackReference")!.inputs.name)).toBe("acme/picortex/prod");
  });

  it("uses the runtimeUrl override and purges on delete", () => {
    const env = plain(byName(resources, "ops-chat").inputs.environment) as Record<string, string>;
    expect(env.PICORTEX_RUNTIME_URL).toBe("http://127.0.0.1:17420");
    expect(env.PICORTEX_CHAT_ON_DELETE).toBe("purge");
    expect(env.PICORTEX_API_TOKEN).toBe("pct_cloud_token");
    expect(env.PICORTEX_CHAT_ID).toBe("ops");
  });
});
