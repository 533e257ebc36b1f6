#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Deployed hosts run the
// esbuild bundle instead (see scripts/bundle). `npm start` runs this file too.
// The Node check comes first, before tsx or a native addon loads (dynamic imports below).
import { nodeVersionProblem } from "./node-check.mjs";

const problem = nodeVersionProblem();
if (problem) {
  process.stderr.write(problem + "\n");
  process.exit(1);
}
const { register } = await import("tsx/esm/api");
register();
await import("../cli/picortex.ts");
