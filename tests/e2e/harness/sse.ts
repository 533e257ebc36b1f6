/**
 * A small Server-Sent Events reader over fetch, for the runtime's provisioning and turn
 * event streams. Collects every event until the server ends the stream.
 */
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
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let idx: number;
      while ((idx = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length === 0) continue;
        const text = data.join("\n");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // keep the raw text
        }
        events.push({ event, data: parsed });
      }
    }
    return { status: res.status, events };
  } finally {
    clearTimeout(timer);
  }
}
