import { PicortexError, type ErrorCategory } from "../errors.js";

/** The HTTP status of each kind of failure: the one place a `PicortexError` becomes a status. */
const STATUS_OF_CATEGORY: Record<ErrorCategory, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  config: 500,
  failed: 500,
  unavailable: 503,
};

function categoryOfStatus(status: number): ErrorCategory {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  // Rate-limited or budget-exhausted (429) is not a usage error: retrying later may work.
  if (status === 429) return "unavailable";
  if (status < 500) return "invalid_input";
  return status === 503 || status === 507 ? "unavailable" : "failed";
}

/** A failure with an explicit HTTP status (one the category alone does not say, e.g. 413, 422, 429, 507). */
export class HttpError extends PicortexError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(categoryOfStatus(status), code, message, { details, cause: options?.cause });
  }
}

/** The status a failure is answered with. */
export function httpStatusOf(err: PicortexError): number {
  return err instanceof HttpError ? err.status : STATUS_OF_CATEGORY[err.category];
}

export const badRequest = (message: string, details?: unknown) => new HttpError(400, "bad_request", message, details);
export const unauthorized = (message = "Missing or invalid credentials.") => new HttpError(401, "unauthorized", message);
export const forbidden = (message: string) => new HttpError(403, "forbidden", message);
export const notFound = (message: string) => new HttpError(404, "not_found", message);
export const conflict = (message: string) => new HttpError(409, "conflict", message);
export const payloadTooLarge = (limit: number) =>
  new HttpError(413, "payload_too_large", `Request body exceeds the limit of ${limit} bytes.`);
export const tooManyRequests = (retryAfterSeconds: number) =>
  new HttpError(429, "rate_limited", `Too many failed attempts; retry in ${retryAfterSeconds} s.`, { retryAfterSeconds });
