#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Deployed hosts run the
// esbuild bundle instead (see scripts/bundle).
import { register } from "tsx/esm/api";
register();
await import("../cli/picortex.ts");
