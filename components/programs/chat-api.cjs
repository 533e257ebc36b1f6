// @ts-check
// picortex: creates or deletes one chat through the runtime's API. Run as `node -e` by
// ChatWorkspace (components/chat-workspace.ts), which sets the action below; everything
// else (URL, token, id, budget) is in the environment, never in this text. Type-checked
// by tsc (allowJs + @ts-check).
/** @type {"create" | "delete"} */
const action = "create";
const base = process.env.PICORTEX_RUNTIME_URL, token = process.env.PICORTEX_API_TOKEN, id = process.env.PICORTEX_CHAT_ID;
if (!base || !token || !id) { console.error("picortex chat: PICORTEX_RUNTIME_URL, PICORTEX_API_TOKEN and PICORTEX_CHAT_ID must be set"); process.exit(2); }
const headers = { authorization: "Bearer " + token, "content-type": "application/json", accept: "application/json" };
/** @typedef {{ status: number, json: any }} Reply */
/** @type {(method: string, path: string, body?: unknown) => Promise<Reply>} */
const call = async (method, path, body) => {
  let res;
  try {
    res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(300000) });
  } catch (/** @type {any} */ e) {
    console.error("picortex chat: cannot reach the runtime at " + base + " (" + (e.cause?.code || e.message) + "): is this machine on the tailnet and the workspace stack up?");
    process.exit(1);
  }
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { json = { raw: text.slice(0, 500) }; }
  return { status: res.status, json };
};
/** @type {(what: string, r: Reply) => never} */
const fail = (what, r) => { console.error("picortex chat: " + what + " failed with HTTP " + r.status + ": " + (r.json?.error?.message || JSON.stringify(r.json).slice(0, 300))); process.exit(1); };
(async () => {
  if (action === "create") {
    console.error("picortex chat: creating " + id + " (user, workspace, settings, token)");
    /** @type {{ id: string, budgetTokens?: number }} */
    const body = { id };
    if (process.env.PICORTEX_CHAT_BUDGET) body.budgetTokens = Number(process.env.PICORTEX_CHAT_BUDGET);
    let r = await call("POST", "/v1/chats", body);
    if (r.status === 409) {
      r = await call("GET", "/v1/chats/" + id);
      if (r.status !== 200 || r.json.status !== "ready") fail("adopting the existing chat " + id + " (status " + (r.json && r.json.status) + ")", r);
      console.error("picortex chat: " + id + " already exists and is ready; adopted");
      if (body.budgetTokens !== undefined && r.json.budgetTokens !== body.budgetTokens) {
        r = await call("PUT", "/v1/chats/" + id + "/budget", { budgetTokens: body.budgetTokens });
        if (r.status !== 200) fail("setting the budget of " + id, r);
        console.error("picortex chat: budget of " + id + " set to " + body.budgetTokens);
      }
    } else if (r.status !== 201) fail("creating chat " + id, r);
    process.stdout.write(JSON.stringify({ id: r.json.id, status: r.json.status, isolation: r.json.isolation }) + "\n");
  } else {
    console.error("picortex chat: deleting " + id);
    const purge = process.env.PICORTEX_CHAT_ON_DELETE === "purge" ? "?purge=1" : "";
    const r = await call("DELETE", "/v1/chats/" + id + purge);
    if (r.status === 404) { console.error("picortex chat: " + id + " was already gone"); return; }
    if (r.status !== 200) fail("deleting chat " + id, r);
    console.error("picortex chat: deleted " + id + (r.json.archivePath ? " (archived at " + r.json.archivePath + ")" : ""));
  }
})();
