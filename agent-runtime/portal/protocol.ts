/**
 * The portal's wire protocol, shared by the page and the server (one definition, so the
 * two cannot drift). Every WebSocket message is a binary frame: one type byte, then a
 * payload. Client and server types use separate ranges so a mixed-up frame is caught.
 *
 * Handshake first: after the upgrade (which already checked the cookie and Origin) the
 * server accepts nothing but HELLO until it has answered READY.
 *
 * Flow control: the page counts the bytes of OUTPUT that xterm.js has finished parsing
 * and reports them with ACK. The server pauses that one client's pty while more than a
 * high watermark is unacknowledged, and resumes it below a low watermark.
 */
import { PicortexError } from "../errors.js";

export const PROTOCOL_VERSION = 1;

/** Client → server. */
export const ClientType = {
  /** JSON `{v, cols, rows}`; must be the first message. */
  HELLO: 0x01,
  /** Raw keyboard/paste bytes (UTF-8). */
  INPUT: 0x02,
  /** cols u16 BE, rows u16 BE. */
  RESIZE: 0x03,
  /** u32 BE: bytes of OUTPUT processed since the previous ACK. */
  ACK: 0x04,
  /** Application-level heartbeat (browsers cannot see WebSocket pings). Empty payload. */
  PING: 0x05,
} as const;

/** Server → client. */
export const ServerType = {
  /** Terminal bytes from the pty. */
  OUTPUT: 0x81,
  /** JSON `ReadyInfo`: the session is attached; the page resets its terminal. */
  READY: 0x82,
  /** Recent scrollback (UTF-8 text with SGR colours) to write before live output. */
  HISTORY: 0x83,
  /** JSON `{reason}`: the tmux client ended (agent exited or session killed). */
  EXIT: 0x84,
  /** JSON `{message}`: a rejected message; the connection may stay open. */
  ERROR: 0x85,
  /** Answer to PING. */
  PONG: 0x86,
} as const;

export interface ReadyInfo {
  v: number;
  /** This connection's id in the server's status and logs. */
  client: number;
  session: string;
  readOnly: boolean;
}

export interface Hello {
  v: number;
  cols: number;
  rows: number;
}

/** Bounds applied by the server (and respected by the page). */
export const LIMITS = {
  /** Largest WebSocket message the server accepts; bigger ones close the connection (1009). */
  maxMessageBytes: 64 * 1024,
  minCols: 2,
  maxCols: 1000,
  minRows: 1,
  maxRows: 500,
  /** The page acknowledges at least this often (bytes), and when its write queue drains. */
  ackEveryBytes: 32 * 1024,
} as const;

/** WebSocket close codes the portal uses (4000-4999 are application codes). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  PROTOCOL: 4400,
  HANDSHAKE_TIMEOUT: 4408,
  IDLE: 4409,
  SESSION_ENDED: 4410,
  /** A read-only viewer closed to make room for a read-write sign-in at portal.maxClients. */
  DISPLACED: 4429,
  SERVER_CLOSING: 4503,
} as const;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function frame(type: number, payload?: Uint8Array | string): Uint8Array {
  const body = payload === undefined ? new Uint8Array(0) : typeof payload === "string" ? utf8.encode(payload) : payload;
  const out = new Uint8Array(body.length + 1);
  out[0] = type;
  out.set(body, 1);
  return out;
}

export function jsonFrame(type: number, value: unknown): Uint8Array {
  return frame(type, JSON.stringify(value));
}

export function resizeFrame(cols: number, rows: number): Uint8Array {
  const out = new Uint8Array(5);
  const view = new DataView(out.buffer);
  out[0] = ClientType.RESIZE;
  view.setUint16(1, cols);
  view.setUint16(3, rows);
  return out;
}

export function ackFrame(bytes: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = ClientType.ACK;
  new DataView(out.buffer).setUint32(1, Math.min(bytes, 0xffffffff));
  return out;
}

export class ProtocolError extends PicortexError {
  constructor(message: string) {
    super("invalid_input", "portal_protocol", message);
  }
}

export type ClientMessage =
  | { type: "hello"; hello: Hello }
  | { type: "input"; data: Uint8Array }
  | { type: "resize"; cols: number; rows: number }
  | { type: "ack"; bytes: number }
  | { type: "ping" };

function checkSize(cols: number, rows: number): void {
  if (!Number.isInteger(cols) || cols < LIMITS.minCols || cols > LIMITS.maxCols)
    throw new ProtocolError(`cols must be an integer in ${LIMITS.minCols}..${LIMITS.maxCols}, got ${cols}`);
  if (!Number.isInteger(rows) || rows < LIMITS.minRows || rows > LIMITS.maxRows)
    throw new ProtocolError(`rows must be an integer in ${LIMITS.minRows}..${LIMITS.maxRows}, got ${rows}`);
}

/** Parses and bounds-checks one client message; throws ProtocolError on anything else. */
export function decodeClientMessage(msg: Uint8Array): ClientMessage {
  if (msg.length === 0) throw new ProtocolError("empty message");
  if (msg.length > LIMITS.maxMessageBytes) throw new ProtocolError(`message exceeds ${LIMITS.maxMessageBytes} bytes`);
  const body = msg.subarray(1);
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  switch (msg[0]) {
    case ClientType.HELLO: {
      let value: unknown;
      try {
        value = JSON.parse(utf8Decoder.decode(body));
      } catch {
        throw new ProtocolError("HELLO is not JSON");
      }
      const v = value as Partial<Hello> | null;
      if (!v || typeof v !== "object" || v.v !== PROTOCOL_VERSION)
        throw new ProtocolError(`HELLO must carry protocol version ${PROTOCOL_VERSION}`);
      checkSize(v.cols as number, v.rows as number);
      return { type: "hello", hello: { v: v.v, cols: v.cols as number, rows: v.rows as number } };
    }
    case ClientType.INPUT:
      if (body.length === 0) throw new ProtocolError("empty INPUT");
      return { type: "input", data: body };
    case ClientType.RESIZE: {
      if (msg.length !== 5) throw new ProtocolError("RESIZE must be 4 bytes");
      const cols = view.getUint16(1);
      const rows = view.getUint16(3);
      checkSize(cols, rows);
      return { type: "resize", cols, rows };
    }
    case ClientType.ACK:
      if (msg.length !== 5) throw new ProtocolError("ACK must be 4 bytes");
      return { type: "ack", bytes: view.getUint32(1) };
    case ClientType.PING:
      return { type: "ping" };
    default:
      throw new ProtocolError(`unknown message type 0x${(msg[0] ?? 0).toString(16)}`);
  }
}

export function decodeText(payload: Uint8Array): string {
  return utf8Decoder.decode(payload);
}
