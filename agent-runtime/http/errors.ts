/** A failure with an HTTP status and a message a client can act on. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "HttpError";
  }
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
