/**
 * picortex doctor: checks a workspace host the way it was designed, from the host
 * itself, as the admin user (or root, which adds the runtime user's sudo rules).
 *
 *   node doctor.mjs [--json] ...           on the host (the e2e test pipes a bundle over ssh)
 *   npx tsx scripts/doctor.ts --ssh pcadmin@host [--json]   from your machine
 *
 * Checks: cloud-init finished with no errors; no failed units; users, groups, modes and
 * owners; the sudoers drop-in installed and effective (allowed operations pass, the
 * escalation list is refused by the real sudo, asked with `sudo -l <argv>` so nothing
 * is ever executed); tools present; and, with --runtime, the deployed runtime's health.
 * Exit 0 when every check passes, 1 otherwise, 2 on bad usage.
 *
 * This is the entry point (and what gets bundled for the host); the parts are
 * doctor/checks.ts (what is checked), doctor/transport.ts (local commands, loopback
 * HTTP, ssh) and doctor/cli.ts (options, output, exit status).
 */
import { fileURLToPath } from "node:url";
import { doctorMain } from "./doctor/cli.js";

export {
  checkCloudInit,
  checkIdentities,
  checkPaths,
  checkRuntime,
  checkSudo,
  checkSystemd,
  checkTools,
  escalations,
  runDoctor,
  runtimeHealthChecks,
  type CheckResult,
  type DoctorOptions,
} from "./doctor/checks.js";
export { parseDoctorArgs } from "./doctor/cli.js";
export { bundleDoctor } from "./doctor/transport.js";

const invokedDirectly =
  process.env.PICORTEX_DOCTOR_BUNDLED === "1" || (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]);
if (invokedDirectly) {
  doctorMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`picortex-doctor: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
