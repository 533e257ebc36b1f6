// Plain JavaScript on purpose: this runs before tsx and before any native addon loads, so an
// old Node gets one clear sentence instead of a NODE_MODULE_VERSION or syntax error.
export const MIN_NODE_MAJOR = 22;

/** The message for a Node too old for picortex, or undefined when `version` (e.g. "20.20.2") will do. */
export function nodeVersionProblem(version = process.versions.node) {
  const major = Number.parseInt(String(version).split(".")[0], 10);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return `picortex needs Node >= ${MIN_NODE_MAJOR} (you have ${version}): see README, "Fresh machine" (bash scripts/setup-node.sh installs Node 24 for your user).`;
}
