/**
 * Hetzner Cloud firewall rules (they apply to the public interface only). Default:
 * no inbound rule at all, so Hetzner drops every inbound connection; Tailscale needs
 * none because it dials out (NAT traversal, DERP relays). Optional: UDP 41641 for
 * direct peer connections, and an SSH allowlist for bootstrap. SSH from the whole
 * internet needs an explicit flag and produces a warning the stack prints loudly.
 */
import { cidrProblem, isWholeInternet } from "./validators.js";

/** Same shape as @pulumi/hcloud's FirewallRule input, so the component passes it through. */
export interface FirewallRule {
  direction: "in";
  protocol: "tcp" | "udp";
  port: string;
  sourceIps: string[];
  description: string;
}

export interface FirewallVars {
  tailscaleDirectUdp: boolean;
  sshAllowlist: string[];
  allowSshFromAnywhere: boolean;
}

export interface RenderedFirewall {
  rules: FirewallRule[];
  /** Human-readable warnings; the stack logs them with pulumi.log.warn. */
  warnings: string[];
}

export const TAILSCALE_DIRECT_PORT = "41641";

export function renderFirewall(vars: FirewallVars): RenderedFirewall {
  const rules: FirewallRule[] = [];
  const warnings: string[] = [];
  for (const cidr of vars.sshAllowlist) {
    const problem = cidrProblem(cidr);
    if (problem) throw new Error(`firewall: ${problem}`);
  }
  const open = vars.sshAllowlist.filter(isWholeInternet);
  if (open.length > 0 && !vars.allowSshFromAnywhere) {
    throw new Error(`firewall: ${open.join(", ")} would open SSH to the whole internet; set allowSshFromAnywhere to confirm`);
  }
  if (vars.tailscaleDirectUdp) {
    rules.push({
      direction: "in",
      protocol: "udp",
      port: TAILSCALE_DIRECT_PORT,
      sourceIps: ["0.0.0.0/0", "::/0"],
      description: "tailscale direct connections (WireGuard, authenticated by tailscaled)",
    });
  }
  if (vars.sshAllowlist.length > 0) {
    // Sorted and de-duplicated: the rule (and the firewall) stays byte-stable whatever order the config lists.
    const sourceIps = [...new Set(vars.sshAllowlist)].sort();
    rules.push({ direction: "in", protocol: "tcp", port: "22", sourceIps, description: "ssh bootstrap allowlist" });
    if (open.length > 0) {
      warnings.push(
        `SSH (tcp/22) is OPEN TO THE WHOLE INTERNET (${open.join(", ")}) because allowSshFromAnywhere is true. Key-only auth is enforced, but prefer your own /32 or the tailnet.`,
      );
    }
  }
  return { rules, warnings };
}
