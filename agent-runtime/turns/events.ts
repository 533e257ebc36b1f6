import { EventEmitter } from "node:events";

/** What SSE clients of a turn receive. */
export type TurnEvent =
  | { type: "status"; status: string; attempt?: number; runner?: string }
  | { type: "text"; text: string }
  | { type: "done"; status: string; reply?: string | null; error?: { code: string | null; message: string | null } };

const ALL = Symbol("all turns");

/** In-process fan-out of turn progress; the database holds the durable state. */
export class TurnEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(turnId: string, event: TurnEvent): void {
    this.emitter.emit(turnId, event);
    this.emitter.emit(ALL, turnId, event);
  }

  /** Every turn's events (the bridges deliver replies of the turns they queued). */
  subscribeAll(listener: (turnId: string, e: TurnEvent) => void): () => void {
    this.emitter.on(ALL, listener);
    return () => this.emitter.off(ALL, listener);
  }

  subscribe(turnId: string, listener: (e: TurnEvent) => void): () => void {
    this.emitter.on(turnId, listener);
    return () => this.emitter.off(turnId, listener);
  }
}
