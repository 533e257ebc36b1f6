/**
 * The logic of scripts/chat.ts: create, destroy and list per-chat stack instances.
 *
 * Pulumi's Automation API needs the Pulumi CLI, so the logic talks to a small
 * interface (ChatStackBackend). automation-backend.ts implements it with LocalWorkspace;
 * tests drive the same logic through a fake.
 *
 * Concurrency: at most one update per stack at a time. Inside one process every update
 * goes through one queue (LocalWorkspace updates in one Node process must not overlap
 * unless they use async-local mode), and across processes a lock file per stack
 * refuses a second update while the first one's process is alive. The backend itself
 * (Pulumi Cloud, or the self-managed backend's lock) is the last line.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { assertChatId } from "../../agent-runtime/host/contract.js";
import { workspaceStackName } from "../../stacks/chat/stack-reference.js";
import { CHAT_STACK_PREFIX } from "../../stacks/chat/config.js";

export const CHAT_PROJECT = "picortex-chat";

export interface ConfigValue {
  value: string;
  secret?: boolean;
}

export interface UpdateResult {
  result: "succeeded" | "failed" | "in-progress" | "not-started";
  resourceChanges?: Record<string, number>;
  outputs?: Record<string, unknown>;
}

export interface ChatStackHandle {
  readonly name: string;
  setConfig(config: Record<string, ConfigValue>): Promise<void>;
  up(onOutput: (line: string) => void): Promise<UpdateResult>;
  destroy(onOutput: (line: string) => void): Promise<UpdateResult>;
}

export interface StackInfo {
  name: string;
  lastUpdate?: string;
  updateInProgress?: boolean;
  resourceCount?: number;
  url?: string;
}

export interface ChatStackBackend {
  /** Stacks of the picortex-chat project. */
  listStacks(): Promise<StackInfo[]>;
  createOrSelectStack(name: string): Promise<ChatStackHandle>;
  /** undefined when the stack does not exist. */
  selectStack(name: string): Promise<ChatStackHandle | undefined>;
  removeStack(name: string): Promise<void>;
}

export interface ChatIo {
  progress(line: string): void;
}

export class ChatCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatCommandError";
  }
}

export function chatStackName(chatId: string): string {
  return CHAT_STACK_PREFIX + assertChatId(chatId);
}

/** Serializes work per key; `global` serializes everything (the LocalWorkspace rule). */
export class UpdateQueue {
  private tails = new Map<string, Promise<unknown>>();
  constructor(private readonly global = true) {}
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const k = this.global ? "*" : key;
    const prev = this.tails.get(k) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(k, tail);
    void tail.then(() => {
      if (this.tails.get(k) === tail) this.tails.delete(k);
    });
    return next;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A lock file per stack (`<dir>/<stack>.lock` holding the owner's pid). A lock whose
 * owner is dead (e.g. killed with -9) is stale and taken over.
 */
export function acquireStackLock(dir: string, stack: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${stack}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) {
        throw new ChatCommandError(`stack ${stack} is being updated by process ${owner}; wait for it to finish (lock ${path})`);
      }
      // Trigger: the lock's owner is gone. Why: a killed run never removes its lock.
      // Outcome: remove it and try once more.
      rmSync(path, { force: true });
    }
  }
  throw new ChatCommandError(`could not take the lock for stack ${stack} in ${dir}`);
}

export interface CreateOptions {
  workspaceStack: string;
  workspaceOrg?: string;
  workspaceProject?: string;
  budgetTokens?: number;
  onDelete?: "archive" | "purge";
  /** Override of the workspace's runtimeUrl output (e.g. an SSH port forward). */
  runtimeUrl?: string;
}

/** An http(s) origin and nothing else (no credentials, path, query or fragment), as written. */
function isRuntimeOrigin(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && (value === url.origin || value === `${url.origin}/`);
}

export interface ChatResult {
  id: string;
  stack: string;
  action: "created" | "updated" | "destroyed";
  result: UpdateResult["result"];
  resourceChanges?: Record<string, number>;
  outputs?: Record<string, unknown>;
}

export class ChatStacks {
  private readonly queue: UpdateQueue;
  constructor(
    private readonly backend: ChatStackBackend,
    private readonly io: ChatIo,
    private readonly opts: { lockDir: string; queue?: UpdateQueue },
  ) {
    this.queue = opts.queue ?? new UpdateQueue(true);
  }

  /** The config the chat stack program reads (stacks/chat/config.ts). */
  static stackConfig(id: string, o: CreateOptions): Record<string, ConfigValue> {
    // Validate the reference early, with the same rules the program applies.
    workspaceStackName({ org: o.workspaceOrg ?? "organization", project: o.workspaceProject, stack: o.workspaceStack });
    const c: Record<string, ConfigValue> = {
      [`${CHAT_PROJECT}:chatId`]: { value: assertChatId(id) },
      [`${CHAT_PROJECT}:workspaceStack`]: { value: o.workspaceStack },
    };
    if (o.workspaceOrg) c[`${CHAT_PROJECT}:workspaceOrg`] = { value: o.workspaceOrg };
    if (o.workspaceProject) c[`${CHAT_PROJECT}:workspaceProject`] = { value: o.workspaceProject };
    if (o.budgetTokens !== undefined) {
      if (!Number.isInteger(o.budgetTokens) || o.budgetTokens < 1) throw new ChatCommandError(`--budget must be a positive integer, got ${o.budgetTokens}`);
      c[`${CHAT_PROJECT}:budgetTokens`] = { value: String(o.budgetTokens) };
    }
    if (o.onDelete) c[`${CHAT_PROJECT}:onDelete`] = { value: o.onDelete };
    if (o.runtimeUrl !== undefined) {
      if (!isRuntimeOrigin(o.runtimeUrl)) throw new ChatCommandError(`--runtime-url must be an http(s) URL of the runtime, like http://127.0.0.1:7420, got ${JSON.stringify(o.runtimeUrl)}`);
      c[`${CHAT_PROJECT}:runtimeUrl`] = { value: o.runtimeUrl };
    }
    return c;
  }

  private async exclusive<T>(stack: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(stack, async () => {
      const release = acquireStackLock(this.opts.lockDir, stack);
      try {
        return await fn();
      } finally {
        release();
      }
    });
  }

  async create(id: string, o: CreateOptions): Promise<ChatResult> {
    const stack = chatStackName(id);
    const config = ChatStacks.stackConfig(id, o);
    return this.exclusive(stack, async () => {
      const existed = (await this.backend.listStacks()).some((s) => s.name === stack);
      this.io.progress(`${existed ? "selecting" : "creating"} stack ${stack}`);
      const handle = await this.backend.createOrSelectStack(stack);
      await handle.setConfig(config);
      this.io.progress(`pulumi up ${stack} (workspace ${o.workspaceStack})`);
      const res = await handle.up((line) => this.io.progress(line.replace(/\s+$/, "")));
      if (res.result !== "succeeded") throw new ChatCommandError(`pulumi up of ${stack} ${res.result}; see the output above`);
      this.io.progress(`chat ${id} is ready`);
      return { id, stack, action: existed ? "updated" : "created", result: res.result, resourceChanges: res.resourceChanges, outputs: res.outputs };
    });
  }

  async destroy(id: string, o: { keepStack?: boolean } = {}): Promise<ChatResult> {
    const stack = chatStackName(id);
    return this.exclusive(stack, async () => {
      const handle = await this.backend.selectStack(stack);
      if (!handle) throw new ChatCommandError(`there is no stack ${stack}; list chats with: tsx scripts/chat.ts list`);
      this.io.progress(`pulumi destroy ${stack}`);
      const res = await handle.destroy((line) => this.io.progress(line.replace(/\s+$/, "")));
      if (res.result !== "succeeded") throw new ChatCommandError(`pulumi destroy of ${stack} ${res.result}; the stack is kept so you can retry`);
      if (!o.keepStack) {
        this.io.progress(`removing stack ${stack}`);
        await this.backend.removeStack(stack);
      }
      this.io.progress(`chat ${id} is gone`);
      return { id, stack, action: "destroyed", result: res.result, resourceChanges: res.resourceChanges };
    });
  }

  async list(): Promise<Array<{ id: string; stack: string; lastUpdate?: string; updateInProgress?: boolean; resourceCount?: number }>> {
    const stacks = await this.backend.listStacks();
    return stacks
      .map((s) => ({ s, short: s.name.split("/").pop()! }))
      .filter(({ short }) => short.startsWith(CHAT_STACK_PREFIX))
      .map(({ s, short }) => ({ id: short.slice(CHAT_STACK_PREFIX.length), stack: short, lastUpdate: s.lastUpdate, updateInProgress: s.updateInProgress, resourceCount: s.resourceCount }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
