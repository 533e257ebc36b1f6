import { EventEmitter } from "node:events";

/** What SSE clients of a turn receive. */
export type TurnEvent =
  | { type: "status"; status: string; attempt?: number; runner?: string }
  | { type: "text"; text: string }
  | { type: "done"; status: string; reply?: string | null; error?: { code: string | null; message: string | null } };

/** In-process fan-out of turn progress; the database holds the durable state. */
export class TurnEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(turnId: string, event: TurnEvent): void {
    this.emitter.emit(turnId, event);
  }

  subscribe(turnId: string, listener: (e: TurnEvent) => void): () => void {
    this.emitter.on(turnId, listener);
    return () => this.emitter.off(turnId, listener);
  }
}
