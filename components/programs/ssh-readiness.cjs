// @ts-check
// picortex: waits until sshd answers on PICORTEX_SSH_HOST:PICORTEX_SSH_PORT. Run as `node -e`
// by RuntimeDeployment (components/runtime-deployment.ts); every input is in the
// environment, never in this text. Type-checked by tsc (allowJs + @ts-check).
const net = require("node:net");
const host = process.env.PICORTEX_SSH_HOST, port = Number(process.env.PICORTEX_SSH_PORT || 22);
const attempts = Number(process.env.PICORTEX_READY_ATTEMPTS || 60), delay = Number(process.env.PICORTEX_READY_DELAY_MS || 5000);
const dnsAttempts = Number(process.env.PICORTEX_READY_DNS_ATTEMPTS || 36);
const DNS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_NODATA"]);
/** @returns {Promise<"up" | "down" | "dns">} */
const probe = () => new Promise((resolve) => {
  const s = net.connect({ host, port, timeout: 10000 });
  let buf = "";
  /** @param {"up" | "down" | "dns"} r */
  const done = (r) => { s.destroy(); resolve(r); };
  s.on("data", (/** @type {Buffer} */ d) => { buf += d; if (buf.startsWith("SSH-")) done("up"); });
  s.on("timeout", () => done("down"));
  s.on("error", (/** @type {NodeJS.ErrnoException} */ e) => done(DNS.has(e.code || "") ? "dns" : "down"));
  s.on("close", () => resolve("down"));
});
(async () => {
  let dnsFailures = 0;
  for (let i = 1; i <= attempts; i++) {
    const r = await probe();
    if (r === "up") { console.error("ssh on " + host + ":" + port + " is up (attempt " + i + ")"); return; }
    if (r === "dns") {
      dnsFailures++;
      console.error("cannot resolve " + host + " (attempt " + dnsFailures + "/" + dnsAttempts + "): the host has not joined the tailnet yet, or this machine does not use MagicDNS");
      if (dnsFailures >= dnsAttempts) {
        console.error("cannot resolve " + host + ": check that this machine is on the tailnet with MagicDNS (tailscale status), and that the host joined (Tailscale admin console, or cloud-init on the Hetzner console); then pulumi up again");
        process.exit(1);
      }
    } else {
      dnsFailures = 0;
      console.error("waiting for ssh on " + host + ":" + port + " (attempt " + i + "/" + attempts + ")");
    }
    if (i < attempts) await new Promise((r) => setTimeout(r, delay));
  }
  console.error("ssh on " + host + ":" + port + " did not answer after " + attempts + " attempts: is the host up and are you on the tailnet (or is your IP allowlisted)?");
  process.exit(1);
})();
