/**
 * A small Server-Sent Events reader over fetch, for the runtime's provisioning and turn
 * event streams. Collects every event until the server ends the stream.
 */
import { sseEvents } from "../../../agent-runtime/http/sse-reader.js";

export interface SseEvent {
  event: string;
  data: unknown;
}

export async function readSse(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number },
): Promise<{ status: number; events: SseEvent[] }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), init.timeoutMs ?? 300_000);
  try {
    const res = await fetch(url, {
      method: init.method ?? "GET",
      headers: { accept: "text/event-stream", ...init.headers },
      body: init.body,
      signal: controller.signal,
    });
    if (!res.ok || !res.body) return { status: res.status, events: [{ event: "http-error", data: await res.text() }] };
    const events: SseEvent[] = [];
    for await (const { event, data: text } of sseEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep the raw text
      }
      events.push({ event, data: parsed });
    }
    return { status: res.status, events };
  } finally {
    clearTimeout(timer);
  }
}
