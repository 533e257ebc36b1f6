/**
 * The portal's chat view (issue 17 item 5): a list of chats and a chat page (send, the reply
 * streaming in, queued/running/failed turns, provisioning progress). Plain DOM, no framework,
 * kept as strings so the deploy bundle carries it without a build step; user data only ever
 * goes through textContent. Served with the portal's CSP (script from 'self', style by nonce).
 */
export const CHAT_VIEW_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>picortex chats</title>
<style nonce="__NONCE__">
*{box-sizing:border-box}
body{margin:0;font:16px/1.4 system-ui,sans-serif;background:#111;color:#eee}
header{display:flex;gap:.5rem;align-items:center;padding:.6rem .8rem;background:#1b1b1b;border-bottom:1px solid #333;position:sticky;top:0}
header a{color:#8cf;text-decoration:none}
main{padding:.6rem .8rem 7rem;max-width:48rem;margin:0 auto}
ul{list-style:none;margin:0;padding:0}
li.chat a{display:flex;justify-content:space-between;gap:.5rem;padding:.8rem .2rem;border-bottom:1px solid #2a2a2a;color:#eee;text-decoration:none}
.badge{font-size:.75rem;padding:.1rem .45rem;border-radius:.6rem;background:#333;white-space:nowrap}
.badge.queued{background:#554}.badge.running{background:#246}.badge.failed,.badge.interrupted{background:#622}.badge.done{background:#263}
.turn{margin:.6rem 0;padding:.5rem;border:1px solid #2a2a2a;border-radius:.5rem;overflow-wrap:anywhere}
.who{font-size:.8rem;color:#aaa;display:flex;justify-content:space-between;gap:.5rem}
.text,.reply{white-space:pre-wrap;margin:.3rem 0}
.reply{color:#cfe}
.error{color:#f99;white-space:pre-wrap}
form{position:fixed;left:0;right:0;bottom:0;display:flex;gap:.4rem;padding:.5rem;background:#1b1b1b;border-top:1px solid #333}
textarea{flex:1;min-width:0;font:16px system-ui,sans-serif;background:#000;color:#eee;border:1px solid #444;border-radius:.4rem;padding:.4rem;resize:none;height:3rem}
button{font:16px system-ui,sans-serif;padding:0 1rem;border-radius:.4rem;border:0;background:#37c;color:#fff}
#status{color:#f99;padding:.4rem 0}
.progress{font-size:.85rem;color:#aaa}
</style>
<script src="/portal/chat-view.js" defer></script>
</head>
<body>
<header><a href="#/" id="home">Chats</a><span id="title"></span></header>
<main><div id="status" role="status"></div><div id="view"></div></main>
</body>
</html>
`;

export const CHAT_VIEW_JS = String.raw`(() => {
"use strict";
const $ = (tag, props, ...kids) => { const e = document.createElement(tag); Object.assign(e, props || {}); for (const k of kids) e.append(k); return e; };
const view = () => document.getElementById("view");
const status = (t) => { document.getElementById("status").textContent = t || ""; };
let timer = null;
let streaming = new Map();
async function api(path, init) {
  const res = await fetch("/portal/api" + path, Object.assign({ credentials: "same-origin", headers: { "content-type": "application/json" } }, init || {}));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || ("HTTP " + res.status));
  return body;
}
function badge(s) { return $("span", { className: "badge " + s, textContent: s }); }
async function showList() {
  document.getElementById("title").textContent = "";
  const { chats } = await api("/chats");
  const ul = $("ul", { id: "chats" });
  for (const c of chats) {
    const a = $("a", { href: "#/chat/" + encodeURIComponent(c.id) }, $("span", { textContent: c.id }), $("span", {}, badge(c.status), " ", $("span", { className: "badge", textContent: c.turns + " turns" })));
    ul.append($("li", { className: "chat" }, a));
  }
  if (!chats.length) ul.append($("li", { textContent: "No chats yet. Create one with: picortex chat create <id>" }));
  view().replaceChildren(ul);
}
function renderTurn(t) {
  const box = $("div", { className: "turn", id: "turn-" + t.id });
  box.dataset.status = t.status;
  box.append($("div", { className: "who" }, $("span", { textContent: t.sender || "you" }), badge(t.status)));
  box.append($("div", { className: "text", textContent: t.text }));
  const reply = $("div", { className: "reply", textContent: t.reply || streaming.get(t.id) || "" });
  box.append(reply);
  if (t.error) box.append($("div", { className: "error", textContent: t.error.code + ": " + t.error.message }));
  return box;
}
async function refreshChat(id) {
  const d = await api("/chats/" + encodeURIComponent(id));
  document.getElementById("title").textContent = d.chat.id;
  const list = document.getElementById("turns");
  if (!list) return;
  const prog = document.getElementById("progress");
  prog.textContent = d.chat.status === "ready" ? "" : d.chat.status + ": " + d.chat.provisioning.map((p) => p.message).join(" → ") + (d.chat.error ? " — " + d.chat.error : "");
  list.replaceChildren(...d.turns.map(renderTurn));
  for (const t of d.turns) if ((t.status === "queued" || t.status === "running") && !streaming.has(t.id)) follow(id, t.id);
}
function follow(chatId, turnId) {
  streaming.set(turnId, "");
  const es = new EventSource("/portal/api/chats/" + encodeURIComponent(chatId) + "/turns/" + turnId + "/events");
  es.addEventListener("text", (ev) => {
    const t = JSON.parse(ev.data).text;
    streaming.set(turnId, streaming.get(turnId) + t);
    const box = document.getElementById("turn-" + turnId);
    if (box) { box.querySelector(".reply").textContent = streaming.get(turnId); const b = box.querySelector(".badge"); b.className = "badge running"; b.textContent = "running"; box.dataset.status = "running"; }
  });
  es.addEventListener("status", (ev) => {
    const s = JSON.parse(ev.data).status;
    const box = document.getElementById("turn-" + turnId);
    if (box && s) { const b = box.querySelector(".badge"); b.className = "badge " + s; b.textContent = s; box.dataset.status = s; }
  });
  es.addEventListener("turn", () => { es.close(); refreshChat(chatId).catch((e) => status(e.message)); });
  es.onerror = () => { es.close(); };
}
async function showChat(id) {
  const list = $("div", { id: "turns" });
  const input = $("textarea", { id: "message", placeholder: "Message", required: true });
  const send = $("button", { id: "send", type: "submit", textContent: "Send" });
  const form = $("form", { id: "composer" }, input, send);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    send.disabled = true;
    try {
      const t = await api("/chats/" + encodeURIComponent(id) + "/turns", { method: "POST", body: JSON.stringify({ text }) });
      input.value = "";
      follow(id, t.id);
      await refreshChat(id);
    } catch (e) { status(e.message); } finally { send.disabled = false; }
  });
  view().replaceChildren($("div", { id: "progress", className: "progress" }), list, form);
  await refreshChat(id);
}
async function route() {
  clearInterval(timer);
  status("");
  const m = /^#\/chat\/([a-z0-9-]{2,24})$/.exec(location.hash);
  try {
    if (m) { await showChat(m[1]); timer = setInterval(() => refreshChat(m[1]).catch((e) => status(e.message)), 3000); }
    else await showList();
  } catch (e) { status(e.message); }
}
window.addEventListener("hashchange", route);
route();
})();
`;
