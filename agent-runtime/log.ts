/**
 * One-line structured logs to stderr. Callers pass fields, never raw request URLs or
 * headers, so tokens cannot leak into logs by accident; `redact` is a last line of
 * defence for anything that looks like a credential.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

const SECRETISH = /(bearer\s+|token[=:]\s*|sk-ant-[a-z0-9-]*|pct_|key[=:]\s*)[A-Za-z0-9._~+/=-]{8,}/gi;

export function redact(text: string): string {
  return text.replace(SECRETISH, (_m, prefix: string) => `${prefix}[redacted]`);
}

export function createLogger(scope = "runtime", write: (line: string) => void = (l) => process.stderr.write(l + "\n")): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields ? " " + JSON.stringify(fields) : "";
    write(redact(`${new Date().toISOString()} ${level} [${scope}] ${message}${extra}`));
  };
  return {
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (s) => createLogger(`${scope}:${s}`, write),
  };
}
