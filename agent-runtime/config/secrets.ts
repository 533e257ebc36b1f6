/**
 * Secrets the runtime may take from its environment. Kept apart from RuntimeConfig so
 * they never travel with config objects (which are printed, logged and serialised).
 */
export interface RuntimeSecrets {
  /** The real Anthropic key, held in memory by the turn gateway only. */
  anthropicApiKey?: string;
}

/**
 * `ANTHROPIC_API_KEY` is honoured so `npm start` works with the variable most users
 * already have set. Chats never inherit it: every chat process gets an environment built
 * from scratch, and talks to the gateway with its own token. On a host the key comes
 * from the systemd credential instead.
 */
export function loadRuntimeSecrets(env: NodeJS.ProcessEnv = process.env): RuntimeSecrets {
  const key = env.ANTHROPIC_API_KEY?.trim();
  return key ? { anthropicApiKey: key } : {};
}
