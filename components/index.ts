/** Public surface of picortex's Pulumi components (see components/README.md). */
export { WorkspaceHost, hostRotationKey, type WorkspaceHostArgs, type WorkspaceHostTemplateVars } from "./workspace-host.js";
export { TailnetAccess, type TailnetAccessArgs } from "./tailnet-access.js";
export { buildLabels, InvalidLabelError, MANAGED_BY_LABEL } from "./labels.js";
export { RuntimeDeployment, readReleaseManifest, type RuntimeDeploymentArgs, type RuntimeConnectionArgs, type RuntimeSettingsArgs, type ReleaseRef } from "./runtime-deployment.js";
export { ChatWorkspace, type ChatWorkspaceArgs } from "./chat-workspace.js";
export { TailnetDeviceCleanup, type TailnetDeviceCleanupArgs, type TailnetCredentials } from "./tailnet-device.js";
export { generateHostKey, publicKeyOfPrivateKey, SshKeyError } from "./ssh-keys.js";
export { ServerPower, type ServerPowerArgs, type HcloudCredentials } from "./server-power.js";
export { ServerCreationMarker, type ServerCreationMarkerArgs } from "./server-creation.js";
