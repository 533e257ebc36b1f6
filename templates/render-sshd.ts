/**
 * sshd hardening drop-in. sshd keeps the FIRST value it reads for most keywords and
 * includes sshd_config.d/*.conf in lexical order at the top of sshd_config, so this
 * file is named 10-… to win over cloud-init's 50-cloud-init.conf.
 * Checked in tests with the real `sshd -t`.
 */

export function renderSshdConfig(vars: { adminUser: string }): string {
  return [
    "# picortex: key-only SSH, deploy admin only (templates/render-sshd.ts).",
    "# Break-glass access is Tailscale SSH (tailnet ACLs) or the Hetzner console.",
    "PubkeyAuthentication yes",
    "AuthenticationMethods publickey",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin no",
    "PermitEmptyPasswords no",
    `AllowUsers ${vars.adminUser}`,
    "# Deploys copy files and may forward the runtime port to the operator; nothing else.",
    "AllowTcpForwarding local",
    "AllowAgentForwarding no",
    "AllowStreamLocalForwarding no",
    "X11Forwarding no",
    "PermitTunnel no",
    "MaxAuthTries 3",
    "LoginGraceTime 30",
    "ClientAliveInterval 300",
    "",
  ].join("\n");
}
