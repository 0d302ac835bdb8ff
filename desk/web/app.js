// The agent desktop and the supervisor wallboard. Plain JavaScript, no
// build step: everything it shows comes from /api/desk, live updates
// from the event stream /api/desk/events.
"use strict";

const texts = {
  en: {
    skip: "Skip to content", view_agent: "Desk", view_board: "Wallboard", language: "Language", logout: "Log out",
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    presence: "Presence", presence_now: "Now:", available: "Available", offline: "Offline", away: "Away", away_reason: "Away reason",
    offers: "Offers", offer_keys: "Alt+A accepts, Alt+D declines.", tasks: "My tasks", no_tasks: "No tasks.", no_offers: "No offers.",
    search: "Customer search", search_label: "Name, e-mail, phone or #id", search_go: "Search", no_results: "No customer found.",
    detail: "Contact", detail_empty: "No task selected.", customer: "Customer", tier: "Value tier", nba: "Next best actions",
    thread: "Mail thread", attachment: "Attachment {n}", attachments: "Attachments", attach: "Attach files", reply_to: "To another address (empty: the customer's, as their mail says)", too_many_files: "At most {n} files of {mib} MiB together.", reply_too_large: "With its files the reply would be larger than the mail server takes ({mb} MB).", sending: "Sending…",
    delivered: "Sent {at} to {to}", bounced: "Not delivered ({at}): {reason}", not_sent_yet: "Waiting to be sent to {to}", not_delivered: "Not sent yet ({n} attempts, next {at}): {error}",
    not_theirs: "Not this customer", not_theirs_label: "{i}: not this customer's", unlink_ask: "Remove {i} from this customer? What comes from it later is someone else's; what is filed here stays.", unlink: "Remove", keep: "Keep", unlinked: "{i} is no longer this customer's.",
    give_up: "Stop sending", given_up: "The reply will not be sent.", gave_up: "Not sent: stopped {at} by {by}", reply: "Reply", send: "Send reply", journey: "Journey", wrapup: "Wrap-up", wrap_code: "Code",
    note: "Note", wrap_send: "Finish task", queues: "Queues", queue: "Queue", waiting: "Waiting", longest: "Longest wait",
    return_task: "Back to the queue: {channel} #{id}", task_returned: "Task #{id} is back in its queue.", sl_target: "SL target", sl_goal: "{p} in {s} s", below_target: "below target", sl15: "SL 15 min", sltoday: "SL today", asa: "ASA", abandon: "Abandoned", answered: "Answered today", agents: "Agents",
    agent: "Agent", tasks_now: "Tasks", occupancy: "Occupancy", admin: "Agents' skills and presence", skills: "Skills (0 = none, 1–5)",
    save_skills: "Save skills", set_presence: "Set presence", accept: "Accept", decline: "Decline", open: "Open",
    offered: "offered", assigned: "in progress", wrapping: "to wrap up", ringing: "Your phone rings: answer there.", new_offer: "New {channel} task from queue {queue}: accept with Alt+A",
    seconds: "{n} s", repeat: "Repeat contact: earlier {channel} contact on {date}, {outcome}.", still_open: "still open",
    outcome: "outcome {o}", last_agent: "Last agent: {a}.", reply_sent: "Reply queued for {to}.", wrapped: "Task finished.",
    touchpoint: "Touchpoint", identity_removed: "{by} removed {i} from this customer", identity_added: "{by} added {i} to this customer", logged_out: "Logged out.", in: "from customer", out: "to customer", bounce_in: "returned by the mail system: a reply was not delivered", none: "none",
    voice: "call", email: "mail", message: "message", busy: "busy", saved: "Saved.",
    queue_setup: "Queues: required skills", skills_needed: "Skills (minimum)", channels: "Channels", strategy: "Strategy",
    agent_setup: "Agents: skills and capacity", skills_have: "Skills", capacity: "Capacity", show: "Show",
    chat: "Chat", customer_typing: "The customer is typing…", chat_ended: "The chat has ended.", chat_message: "Message",
    chat_send: "Send", chat_end: "End chat", from_customer: "Customer", from_agent: "Agent", from_system: "dirigent",
  },
  de: {
    skip: "Zum Inhalt springen", view_agent: "Arbeitsplatz", view_board: "Wallboard", language: "Sprache", logout: "Abmelden",
    login_title: "Anmelden", user: "Benutzer", password: "Passwort", login: "Anmelden",
    presence: "Status", presence_now: "Jetzt:", available: "Verfügbar", offline: "Abgemeldet", away: "Abwesend", away_reason: "Grund",
    offers: "Angebote", offer_keys: "Alt+A nimmt an, Alt+D lehnt ab.", tasks: "Meine Aufgaben", no_tasks: "Keine Aufgaben.", no_offers: "Keine Angebote.",
    search: "Kundensuche", search_label: "Name, E-Mail, Telefon oder #Nummer", search_go: "Suchen", no_results: "Kein Kunde gefunden.",
    detail: "Kontakt", detail_empty: "Keine Aufgabe ausgewählt.", customer: "Kunde", tier: "Wertstufe", nba: "Nächste beste Aktionen",
    thread: "E-Mail-Verlauf", attachment: "Anhang {n}", attachments: "Anhänge", attach: "Dateien anhängen", reply_to: "An eine andere Adresse (leer: die des Kunden, wie seine Mail sie nennt)", too_many_files: "Höchstens {n} Dateien mit zusammen {mib} MiB.", reply_too_large: "Mit den Dateien wäre die Antwort größer, als der Mailserver annimmt ({mb} MB).", sending: "Wird gesendet…",
    delivered: "Gesendet {at} an {to}", bounced: "Nicht zugestellt ({at}): {reason}", not_sent_yet: "Wartet auf den Versand an {to}", not_delivered: "Noch nicht gesendet ({n} Versuche, nächster {at}): {error}",
    not_theirs: "Nicht dieser Kunde", not_theirs_label: "{i}: gehört nicht zu diesem Kunden", unlink_ask: "{i} von diesem Kunden entfernen? Was später von dort kommt, gehört zu jemand anderem; was hier abgelegt ist, bleibt.", unlink: "Entfernen", keep: "Behalten", unlinked: "{i} gehört nicht mehr zu diesem Kunden.",
    give_up: "Versand abbrechen", given_up: "Die Antwort wird nicht gesendet.", gave_up: "Nicht gesendet: abgebrochen {at} von {by}", reply: "Antwort", send: "Antwort senden", journey: "Kundenreise", wrapup: "Abschluss", wrap_code: "Code",
    note: "Notiz", wrap_send: "Aufgabe abschließen", queues: "Warteschlangen", queue: "Warteschlange", waiting: "Wartend", longest: "Längste Wartezeit",
    return_task: "Zurück in die Warteschlange: {channel} #{id}", task_returned: "Aufgabe #{id} ist zurück in ihrer Warteschlange.", sl_target: "SL-Ziel", sl_goal: "{p} in {s} s", below_target: "unter dem Ziel", sl15: "SL 15 Min.", sltoday: "SL heute", asa: "ASA", abandon: "Abgebrochen", answered: "Heute angenommen", agents: "Agenten",
    agent: "Agent", tasks_now: "Aufgaben", occupancy: "Auslastung", admin: "Fähigkeiten und Status der Agenten", skills: "Fähigkeiten (0 = keine, 1–5)",
    save_skills: "Fähigkeiten speichern", set_presence: "Status setzen", accept: "Annehmen", decline: "Ablehnen", open: "Öffnen",
    offered: "angeboten", assigned: "in Bearbeitung", wrapping: "abzuschließen", ringing: "Ihr Telefon klingelt: dort annehmen.", new_offer: "Neue Aufgabe ({channel}) aus {queue}: mit Alt+A annehmen",
    seconds: "{n} s", repeat: "Wiederholter Kontakt: früherer Kontakt ({channel}) am {date}, {outcome}.", still_open: "noch offen",
    outcome: "Ergebnis {o}", last_agent: "Zuletzt betreut von {a}.", reply_sent: "Antwort an {to} ist unterwegs.", wrapped: "Aufgabe abgeschlossen.",
    touchpoint: "Ereignis", identity_removed: "{by} hat {i} von diesem Kunden entfernt", identity_added: "{by} hat {i} diesem Kunden hinzugefügt", logged_out: "Abgemeldet.", in: "vom Kunden", out: "an den Kunden", bounce_in: "vom Mailsystem zurück: eine Antwort wurde nicht zugestellt", none: "keine",
    voice: "Anruf", email: "E-Mail", message: "Nachricht", busy: "Beschäftigt", saved: "Gespeichert.",
    queue_setup: "Warteschlangen: nötige Fähigkeiten", skills_needed: "Fähigkeiten (mindestens)", channels: "Kanäle", strategy: "Strategie",
    agent_setup: "Agenten: Fähigkeiten und Kapazität", skills_have: "Fähigkeiten", capacity: "Kapazität", show: "Anzeigen",
    chat: "Chat", customer_typing: "Der Kunde schreibt …", chat_ended: "Der Chat ist beendet.", chat_message: "Nachricht",
    chat_send: "Senden", chat_end: "Chat beenden", from_customer: "Kunde", from_agent: "Agent", from_system: "dirigent",
  },
};

const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("dirigent-lang") || (document.documentElement.lang === "de" ? "de" : "en");
let me = null;
let csrf = "";
let stream = null;
let offers = [];          // tasks on offer to me
let current = null;       // the task on screen
let opening = 0;          // the task asked for last: an answer for another is dropped
let adminData = null;
let board = null;         // the wallboard drawn last
const returning = new Set(); // tasks whose return to the queue is on its way

function t(key, vars) {
  let s = (texts[lang] && texts[lang][key]) || texts.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll("{" + k + "}", () => v); // v as it is: "$&" in an address is no pattern
  return s;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  $("lang").value = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  if (me) render();
}

// render redraws what carries words, after a language switch.
function render() {
  renderPresence();
  if (has("agent")) renderOffers();
  renderDetail();
  if (adminData) renderAdminAgent();
  if (board) renderBoard(board);
}

function say(msg, isError) {
  const s = $("status");
  s.textContent = msg;
  s.classList.toggle("error", !!isError);
}

function announce(msg) {
  // Re-set so that screen readers announce a repeated message too.
  const a = $("announce");
  a.textContent = "";
  setTimeout(() => { a.textContent = msg; }, 50);
}

// api calls the desk API; changes carry the CSRF token. Errors are
// thrown with the server's message.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
  const resp = await fetch("/api/desk" + path, opts);
  const data = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) {
    const err = new Error(data.error || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function locale() {
  return lang === "de" ? "de-DE" : "en-GB";
}

function fmtTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" });
}

// deliveryNote says how a reply stands with the mail server: bounced,
// sent, or not yet, with what the server answered last and a button that
// stops the tries (a wrong address), or given up.
function deliveryNote(contactID, dl) {
  if (dl.bounced) return [el("span", { class: "delivery error" }, t("bounced", { at: fmtTime(dl.bounced), reason: dl.bounce_reason || "" }))];
  if (dl.sent) return [el("span", { class: "meta delivery" }, t("delivered", { at: fmtTime(dl.sent), to: dl.to }))];
  if (dl.gave_up) return [el("span", { class: "meta delivery" }, t("gave_up", { at: fmtTime(dl.gave_up), by: dl.gave_up_by || "" }))];
  if (!dl.attempts) return [el("span", { class: "meta delivery" }, t("not_sent_yet", { to: dl.to }))];
  return [el("span", { class: "delivery error" }, t("not_delivered", { n: dl.attempts, error: dl.last_error || "", at: fmtTime(dl.next_attempt) })),
    el("button", { type: "button", class: "give-up", "data-focus": "give-up " + contactID, onclick: () => giveUp(contactID) }, t("give_up"))];
}

async function giveUp(contactID) {
  const id = current && current.task.id;
  try {
    const r = await api("POST", "/contacts/" + contactID + "/give-up");
    say(t("given_up"));
    // Drawn from the answer: the delivery event that follows reads the
    // task again, and finds nothing changed.
    if (id && current && current.task.id === id) {
      current.deliveries = { ...current.deliveries, [contactID]: r.delivery };
      renderDetail();
    }
  } catch (e) { say(e.message, true); }
}

// attachmentList links a mail's attachments for download (the desk
// serves them as downloads only).
function attachmentList(m) {
  return el("ul", { class: "attachments", "aria-label": t("attachments") }, ...m.attachments.map((a, i) => {
    const name = a.name || t("attachment", { n: i + 1 });
    return el("li", {}, el("a", { href: "/api/desk/contacts/" + m.id + "/attachments/" + i, download: name, "data-focus": "file " + m.id + " " + i },
      el("span", { "aria-hidden": "true" }, "📎 "), name + " (" + fmtSize(a.size) + ")"));
  }));
}

function fmtSize(bytes) {
  const [n, unit] = bytes < 1000 ? [bytes, "byte"] : bytes < 1e6 ? [bytes / 1e3, "kilobyte"] : [bytes / 1e6, "megabyte"];
  return new Intl.NumberFormat(locale(), { style: "unit", unit, maximumFractionDigits: unit === "megabyte" ? 1 : 0 }).format(n);
}

function pct(v) {
  return v === null || v === undefined ? "–" : Math.round(v * 100) + " %";
}

function has(role) {
  return me && me.roles.includes(role);
}

// --- login and session ---

async function start() {
  applyLanguage();
  try {
    me = await api("GET", "/me");
  } catch (e) {
    showLogin();
    return;
  }
  loggedIn();
}

function showLogin() {
  me = null;
  offers = [];
  adminData = null;
  clearDetail();
  drafts.clear(); // nothing of a customer stays for whoever logs in next
  $("search-results").replaceChildren();
  for (const id of ["agent", "board", "views", "logout"]) $(id).hidden = true;
  $("whoami").textContent = "";
  $("login").hidden = false;
  $("login-user").focus();
}

function loggedIn() {
  csrf = me.csrf_token;
  $("login").hidden = true;
  $("logout").hidden = false;
  $("whoami").textContent = me.user;
  const both = has("agent") && (has("supervisor") || has("admin"));
  $("views").hidden = !both;
  fillSelect($("away-reason"), me.away_reasons);
  fillSelect($("admin-reason"), me.away_reasons);
  fillSelect($("wrap-code"), me.wrap_codes);
  show(has("agent") ? "agent" : "board");
  openStream();
  if (has("agent")) {
    loadTasks();
  }
  if (has("supervisor") || has("admin")) loadBoard();
  if (has("admin")) loadAdmin();
  // Opened from a phone's link to a contact: show its task.
  const m = location.pathname.match(/^\/contacts\/(\d+)$/);
  if (m && has("agent")) openTask(Number(m[1]), true);
}

function fillSelect(sel, values) {
  sel.replaceChildren(...values.map((v) => el("option", { value: v }, v)));
}

function show(view) {
  $("agent").hidden = view !== "agent";
  $("board").hidden = view !== "board";
  $("view-agent").setAttribute("aria-pressed", view === "agent");
  $("view-board").setAttribute("aria-pressed", view === "board");
}

function openStream() {
  if (stream) stream.close();
  stream = new EventSource("/api/desk/events");
  stream.addEventListener("offer", (e) => onOffer(JSON.parse(e.data)));
  stream.addEventListener("revoke", (e) => onRevoke(JSON.parse(e.data)));
  stream.addEventListener("tasks", async () => {
    await loadTasks();
    // A call that ended elsewhere now wants its wrap-up; a task that is
    // gone (its customer was erased) leaves the screen with its data.
    if (current && current.task.id) {
      const mine = await api("GET", "/tasks").catch(() => null);
      const t = mine && mine.tasks.find((x) => x.id === current.task.id);
      if (t && t.state !== current.task.state) openTask(t.id, false);
      else if (mine && !t) clearDetail();
    }
  });
  stream.addEventListener("chat", (e) => onChat(JSON.parse(e.data)));
  // A reply of the thread on screen was sent, failed an attempt, bounced or
  // was stopped.
  stream.addEventListener("delivery", (e) => refreshTask(JSON.parse(e.data).id));
  stream.addEventListener("presence", (e) => {
    const p = JSON.parse(e.data);
    me.presence = p.presence;
    me.reason = p.reason;
    renderPresence();
    announce(t("presence") + ": " + t(p.presence));
  });
  stream.addEventListener("wallboard", (e) => renderBoard(JSON.parse(e.data)));
  stream.addEventListener("open", () => { if (has("agent")) loadTasks(); });
  stream.addEventListener("error", async () => {
    // A lost session ends the stream for good; anything else reconnects.
    try { await api("GET", "/me"); } catch (err) { if (err.status === 401) { stream.close(); showLogin(); } }
  });
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    me = await api("POST", "/login", { user: $("login-user").value, password: $("login-password").value });
    $("login-password").value = "";
    loggedIn();
  } catch (e) {
    $("login-error").textContent = e.message;
    $("login-password").select();
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/logout");
  } catch (e) {
    // The store did not delete the session: it is still alive, say so.
    if (e.status === 500) { say(e.message, true); return; }
    /* otherwise gone anyway */
  }
  if (stream) stream.close();
  say(t("logged_out"));
  showLogin();
});

$("lang").addEventListener("change", () => {
  lang = $("lang").value;
  localStorage.setItem("dirigent-lang", lang);
  applyLanguage();
});

for (const b of document.querySelectorAll("#views button")) {
  b.addEventListener("click", () => show(b.dataset.view));
}

// --- presence ---

async function setPresence(presence, reason) {
  try {
    me = await api("PUT", "/me/presence", reason ? { presence, reason } : { presence });
    csrf = me.csrf_token;
    renderPresence();
    say("");
  } catch (e) { say(e.message, true); }
}
$("presence-available").addEventListener("click", () => setPresence("available"));
$("presence-offline").addEventListener("click", () => setPresence("offline"));
$("presence-away").addEventListener("click", () => setPresence("away", $("away-reason").value));

function renderPresence() {
  if (!me.presence) return;
  let s = t(me.presence);
  if (me.reason) s += " (" + me.reason + ")";
  $("presence-now").textContent = s;
}

// --- offers and tasks ---

function onOffer(o) {
  offers = offers.filter((x) => x.id !== o.id).concat([o]);
  renderOffers();
  announce(o.channel === "voice" ? t("ringing") : t("new_offer", { channel: t(o.channel), queue: o.queue }));
  // The customer card goes on screen at once: for a call, while it rings.
  openTask(o.id, false);
}

function onRevoke(r) {
  offers = offers.filter((x) => x.id !== r.id);
  renderOffers();
  if (current && current.task.id === r.id && current.task.state === "offered") clearDetail();
}

function renderOffers() {
  const ul = $("offers");
  if (offers.length === 0) {
    ul.replaceChildren(el("li", {}, t("no_offers")));
    return;
  }
  ul.replaceChildren(...offers.map((o) => el("li", { class: "offer", "data-task": o.id },
    el("span", {}, t(o.channel) + " · " + o.queue + " · #" + o.id),
    el("span", { class: "countdown", "data-deadline": o.deadline }, ""),
    // A call is answered or refused on the phone that rings.
    ...(o.channel === "voice" ? [el("strong", { class: "ringing" }, t("ringing"))] : [
      el("button", { type: "button", id: "offer-accept", "aria-keyshortcuts": "Alt+A", onclick: () => accept(o.id) }, t("accept")),
      el("button", { type: "button", id: "offer-decline", class: "secondary", "aria-keyshortcuts": "Alt+D", onclick: () => decline(o.id) }, t("decline")),
    ]),
  )));
  tick();
}

function tick() {
  for (const c of document.querySelectorAll(".countdown")) {
    const left = Math.max(0, Math.round((new Date(c.dataset.deadline) - Date.now()) / 1000));
    c.textContent = t("seconds", { n: left });
  }
}
setInterval(tick, 1000);

// Alt+A and Alt+D take the oldest offer from anywhere on the page, so
// that an agent typing elsewhere answers without hunting for the button.
document.addEventListener("keydown", (ev) => {
  const o = offers.find((x) => x.channel !== "voice");
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || !o || $("agent").hidden) return;
  if (ev.code === "KeyA") { ev.preventDefault(); accept(o.id); }
  if (ev.code === "KeyD") { ev.preventDefault(); decline(o.id); }
});

async function accept(id) {
  try {
    await api("POST", "/offers/" + id + "/accept");
    offers = offers.filter((x) => x.id !== id);
    renderOffers();
    await loadTasks();
    await openTask(id, true);
  } catch (e) { say(e.message, true); loadTasks(); }
}

async function decline(id) {
  try {
    await api("POST", "/offers/" + id + "/decline");
  } catch (e) { say(e.message, true); }
  offers = offers.filter((x) => x.id !== id);
  renderOffers();
  if (current && current.task.id === id) clearDetail();
}

async function loadTasks() {
  try {
    const [{ tasks }, m] = await Promise.all([api("GET", "/tasks"), api("GET", "/me")]);
    me = m;
    renderPresence();
    offers = tasks.filter((x) => x.state === "offered");
    renderOffers();
    const mine = tasks.filter((x) => x.state !== "offered");
    const ul = $("tasks");
    if (mine.length === 0) ul.replaceChildren(el("li", {}, t("no_tasks")));
    else ul.replaceChildren(...mine.map((x) => el("li", {},
      el("span", {}, t(x.channel) + " · " + x.queue + " · #" + x.id + " · " + t(x.state)),
      el("button", { type: "button", class: "secondary", onclick: () => openTask(x.id, true) }, t("open")))));
  } catch (e) { say(e.message, true); }
}

function clearDetail() {
  opening = 0;
  unlinking = null;
  if (current) drafts.delete(current.task.id); // the task is done, or gone
  current = null;
  showDraft(0);
  $("detail-body").hidden = true;
  $("detail-empty").hidden = false;
}

async function openTask(id, focus) {
  opening = id;
  try {
    const d = await api("GET", "/tasks/" + id);
    if (opening !== id) return;
    if (current && current.task.id === id) keepLive(d);
    if (!current || current.task.id !== id) {
      keepDraft();
      showDraft(id);
      unlinking = null;
    }
    current = d;
    renderDetail();
    if (focus) $("detail").focus();
  } catch (e) { say(e.message, true); }
}

// keepLive keeps in a task read again what the chat said live while it
// was being read, which is not in what was read (the customer may answer
// at once).
function keepLive(d) {
  const read = d.chat || [];
  const last = read.length ? read[read.length - 1].seq : 0;
  d.chat = read.concat((current.chat || []).filter((m) => m.seq > last));
  d.chatEnded = current.chatEnded;
}

// refreshTask reads the task on screen again, leaving alone one the agent
// is opening meanwhile, and what they type (the form is not rendered). The
// task is drawn anew only when its thread or journey changed.
async function refreshTask(id) {
  if (!current || current.task.id !== id || opening !== id) return;
  const d = await api("GET", "/tasks/" + id).catch(() => null);
  if (!d || !current || current.task.id !== id || opening !== id) return;
  if (JSON.stringify([d.thread, d.deliveries, d.journey]) === JSON.stringify([current.thread, current.deliveries, current.journey])) return;
  keepLive(d);
  current = d;
  renderDetail();
}

function renderDetail() {
  const d = current;
  if (!d) return;
  // What the agent is on (a button, a file) keeps the focus when the task
  // is drawn anew (a delivery changed, the call ended).
  const body = $("detail-body");
  const on = body.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  const c = d.customer || { name: "?", identities: [] };
  $("customer-name").textContent = c.name || "#" + (c.id || "?");
  $("customer-tier").textContent = c.value_tier || 0;
  renderIdentities(c);
  $("customer-attributes").replaceChildren(...Object.entries(c.attributes || {}).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

  const banner = $("repeat-banner");
  if (d.repeat_of) {
    const r = d.repeat_of;
    let s = t("repeat", { channel: t(r.channel), date: fmtTime(r.start), outcome: r.outcome ? t("outcome", { o: r.outcome }) : t("still_open") });
    if (d.last_agent) s += " " + t("last_agent", { a: d.last_agent });
    banner.textContent = s;
    banner.hidden = false;
  } else banner.hidden = true;

  $("nba").replaceChildren(...d.next_best_actions.map((a) => el("li", {}, el("strong", {}, a.action), el("span", { class: "reason" }, a.reason))));

  $("journey").replaceChildren(...d.journey.map((e) => {
    if (e.contact) {
      const x = e.contact;
      return el("li", {}, el("span", { class: "meta" }, fmtTime(x.start) + " · " + t(x.channel) + " · " + (x.direction === "out" ? t("out") : t("in"))),
        " ", x.subject || x.intent || "", x.outcome ? " — " + x.outcome : "", x.agent ? " (" + x.agent + ")" : "",
        ...(x.attachments ? [attachmentList(x)] : []));
    }
    const p = e.touchpoint, data = p.data || {};
    // What a person did to the customer's identities is dirigent's own,
    // in words; other systems' touchpoints as they posted them.
    const what = p.type === "identity_removed" || p.type === "identity_added" ? t(p.type, { i: data.identity, by: data.by })
      : p.type + " " + Object.entries(data).map(([k, v]) => k + "=" + v).join(", ");
    return el("li", {}, el("span", { class: "meta" }, fmtTime(p.at) + " · " + t("touchpoint")), " ", what);
  }));

  const isMail = d.contact && d.contact.channel === "email" && d.conversation;
  $("thread-card").hidden = !isMail;
  if (isMail) {
    $("thread-tag").textContent = "[#" + d.conversation.tag + "] " + (d.conversation.subject || "");
    $("thread").replaceChildren(...(d.thread || []).map((m) => el("li", { class: m.direction },
      el("span", { class: "meta" }, fmtTime(m.start) + " · " + (m.direction === "out" ? t("out") + (m.agent ? " (" + m.agent + ")" : "") : t(m.bounce_of ? "bounce_in" : "in"))),
      el("pre", {}, m.text || m.subject || ""),
      ...(m.attachments ? [attachmentList(m)] : []),
      ...(d.deliveries && d.deliveries[m.id] ? deliveryNote(m.id, d.deliveries[m.id]) : []))));
  }
  const isChat = d.contact && d.contact.channel === "message";
  $("chat-card").hidden = !isChat;
  if (isChat) renderChat();
  enableReply();
  $("wrap-form").hidden = d.task.state !== "assigned" && d.task.state !== "wrapping";
  if (on) body.querySelector('[data-focus="' + CSS.escape(on) + '"]')?.focus();
}

// The customer's identities, each with a button that takes it from them
// (the address of a stranger whose mail was filed here, a wrong number),
// asked once more in place: for an agent on a task they have taken, for a
// supervisor or admin on any card; never a customer's only identity.
let unlinking = null; // { customer, identity } asked about

function renderIdentities(c) {
  const ul = $("customer-identities");
  const may = c.id && (c.identities || []).length > 1 &&
    (has("supervisor") || has("admin") || (current && (current.task.state === "assigned" || current.task.state === "wrapping")));
  if (unlinking && unlinking.customer !== c.id) unlinking = null;
  ul.replaceChildren(...(c.identities || []).map((i) => {
    const identity = el("span", { class: "identity" }, i);
    if (!may) return el("li", {}, identity);
    if (unlinking && unlinking.identity === i) {
      return el("li", { class: "unlinking" }, el("span", { id: "unlink-question" }, t("unlink_ask", { i })), " ",
        el("button", { type: "button", class: "unlink-yes", "data-focus": "unlink yes", "aria-describedby": "unlink-question", onclick: (ev) => unlink(ev.target, c.id, i) }, t("unlink")), " ",
        el("button", { type: "button", class: "secondary", "data-focus": "unlink no", "aria-describedby": "unlink-question", onclick: () => ask(null) }, t("keep")));
    }
    return el("li", {}, identity, " ", el("button", { type: "button", class: "secondary unlink", "data-identity": i, "data-focus": "unlink ask " + i, "aria-label": t("not_theirs_label", { i }), onclick: () => ask(i) }, t("not_theirs")));
  }));

  function ask(i) {
    const was = unlinking && unlinking.identity;
    unlinking = i === null ? null : { customer: c.id, identity: i };
    renderIdentities(c);
    ul.querySelector('[data-focus="' + CSS.escape(i === null ? "unlink ask " + was : "unlink yes") + '"]')?.focus();
  }
}

async function unlink(button, customerID, identity) {
  button.disabled = true; // one request, however often it is pressed
  const ul = $("customer-identities");
  try {
    await api("DELETE", "/customers/" + customerID + "/identities/" + encodeURIComponent(identity));
    say(t("unlinked", { i: identity }));
  } catch (e) {
    say(e.message, true);
    // Not found: taken by someone else meanwhile. Anything else: the
    // question stays, to be tried again.
    if (e.status !== 404) {
      button.disabled = false;
      return;
    }
  }
  unlinking = null;
  const c = current && current.customer;
  if (!c || c.id !== customerID) return; // another card is on screen now
  const lost = !document.activeElement || document.activeElement === document.body || ul.contains(document.activeElement);
  c.identities = c.identities.filter((i) => i !== identity);
  renderIdentities(c);
  if (lost) $("detail").focus();
  // The journey tells who took it: read again, the task's or, on a card
  // looked up, the customer's.
  if (current.task.id) refreshTask(current.task.id);
  else api("GET", "/customers/" + customerID).then((card) => {
    if (current && !current.task.id && current.customer.id === customerID) {
      current.journey = card.journey;
      renderDetail();
    }
  }).catch(() => {});
}

// The reply form: usable for a task taken, not while a reply is on its
// way (a second Enter would send it twice).
let sendingReply = false;

function enableReply() {
  const off = sendingReply || !current || current.task.state !== "assigned";
  for (const id of ["reply-send", "reply-text", "reply-to", "reply-files"]) $(id).disabled = off;
}

// An unsent reply, its text and files, stays with its task: opening
// another (an offer arriving, a customer looked up) keeps it for when the
// agent comes back, and it cannot go to another customer.
const drafts = new Map(); // task id → { text, to, files }

function keepDraft() {
  if (!current || !current.task.id) return;
  const text = $("reply-text").value, to = $("reply-to").value, files = fileList($("reply-files").files);
  if (text || to || files.length) drafts.set(current.task.id, { text, to, files });
  else drafts.delete(current.task.id);
}

function showDraft(id) {
  const d = drafts.get(id);
  $("reply-text").value = d ? d.text : "";
  $("reply-to").value = d ? d.to : "";
  $("reply-files").files = d ? d.files : fileList([]);
}

// fileList copies files into a FileList of their own, which an input
// may be given.
function fileList(files) {
  const dt = new DataTransfer();
  for (const f of files) dt.items.add(f);
  return dt.files;
}

$("reply-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current || sendingReply) return;
  // What is sent is what the form held for this task when the agent sent
  // it, whatever they open while the files are read and sent.
  const id = current.task.id, text = $("reply-text").value, to = $("reply-to").value.trim(), picked = [...$("reply-files").files];
  if (picked.length > me.reply_max_files || picked.reduce((n, f) => n + f.size, 0) > me.reply_max_file_bytes) {
    say(t("too_many_files", { n: me.reply_max_files, mib: me.reply_max_file_bytes / (1 << 20) }), true);
    return;
  }
  // Base64 makes 78 bytes (a line) of 57: what the mail server takes is
  // told here, before megabytes are read and sent only to be refused.
  if (me.reply_max_bytes && text.length + picked.reduce((n, f) => n + Math.ceil(f.size / 57) * 78, 0) > me.reply_max_bytes) {
    say(t("reply_too_large", { mb: (me.reply_max_bytes / 1e6).toLocaleString(locale(), { maximumFractionDigits: 1 }) }), true);
    return;
  }
  sendingReply = true;
  enableReply();
  say(t("sending"));
  try {
    const files = await Promise.all(picked.map(async (f) => ({ name: f.name, type: f.type, data: await base64Of(f) })));
    const r = await api("POST", "/tasks/" + id + "/reply", { text, to, files });
    say(t("reply_sent", { to: r.to }));
    drafts.delete(id);
    if (current && current.task.id === id) {
      showDraft(0);
      await openTask(id, false);
    }
  } catch (e) {
    // Not sent: the draft waits with its task, also when the agent has
    // opened another meanwhile.
    if (!current || current.task.id !== id) drafts.set(id, { text, to, files: fileList(picked) });
    say("#" + id + ": " + e.message, true);
  }
  finally {
    sendingReply = false;
    enableReply();
  }
});

// base64Of reads a file the agent picked, for the JSON of a reply.
function base64Of(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result.slice(r.result.indexOf(",") + 1));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

$("wrap-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current) return;
  try {
    await api("POST", "/tasks/" + current.task.id + "/wrapup", { code: $("wrap-code").value, note: $("wrap-note").value });
    $("wrap-note").value = "";
    say(t("wrapped"));
    clearDetail();
    await loadTasks();
    $("tasks-title").focus();
  } catch (e) { say(e.message, true); }
});

// --- chats ---

function renderChat() {
  const msgs = current.chat || [];
  $("chat").replaceChildren(...msgs.map((m) => el("li", { class: m.from === "customer" ? "in" : "out", "data-seq": m.seq },
    el("span", { class: "meta" }, fmtTime(m.at) + " · " + t("from_" + m.from) + (m.agent ? " (" + m.agent + ")" : "")),
    el("pre", {}, m.text))));
  $("chat-ended").hidden = !current.chatEnded;
  $("chat-send").disabled = !!current.chatEnded;
  $("chat-end").disabled = !!current.chatEnded;
}

function onChat(e) {
  if (!current || current.task.id !== e.task_id) {
    if (e.kind === "message") announce(t("chat") + ": " + e.text);
    return;
  }
  if (e.kind === "message") {
    current.chat = (current.chat || []).filter((m) => m.seq !== e.seq).concat([{ seq: e.seq, at: e.at, from: "customer", text: e.text }]);
    $("chat-typing").hidden = true;
    announce(t("from_customer") + ": " + e.text);
  } else if (e.kind === "typing") {
    $("chat-typing").hidden = !e.active;
    return;
  } else if (e.kind === "ended") {
    current.chatEnded = true;
  }
  renderChat();
}

let typingSent = 0;
$("chat-text").addEventListener("input", () => {
  if (!current || Date.now() - typingSent < 3000) return;
  typingSent = Date.now();
  api("PUT", "/tasks/" + current.task.id + "/chat/typing", { active: true }).catch(() => {});
});

$("chat-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current) return;
  try {
    await api("POST", "/tasks/" + current.task.id + "/chat", { text: $("chat-text").value });
    $("chat-text").value = "";
    typingSent = 0;
    await openTask(current.task.id, false);
    $("chat-text").focus();
  } catch (e) { say(e.message, true); }
});

$("chat-end").addEventListener("click", async () => {
  if (!current) return;
  try {
    await api("POST", "/tasks/" + current.task.id + "/chat/end");
    current.chatEnded = true;
    renderChat();
  } catch (e) { say(e.message, true); }
});

// --- customer search ---

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const { customers } = await api("GET", "/customers?q=" + encodeURIComponent($("search-q").value));
    const ul = $("search-results");
    if (customers.length === 0) ul.replaceChildren(el("li", {}, t("no_results")));
    else ul.replaceChildren(...customers.map((c) => el("li", {}, el("strong", {}, c.name || "#" + c.id), " ", (c.identities || []).join(", "),
      el("button", { type: "button", class: "secondary", onclick: () => showCustomer(c.id) }, t("show")))));
  } catch (e) { say(e.message, true); }
});

// showCustomer puts a customer's card and journey on screen, outside of
// any task: no thread, no next best actions, no wrap-up.
async function showCustomer(id) {
  try {
    const c = await api("GET", "/customers/" + id);
    keepDraft();
    showDraft(0);
    unlinking = null;
    current = {
      task: { id: 0, state: "none" }, customer: c.customer, journey: c.journey, next_best_actions: [],
    };
    renderDetail();
    $("detail").focus();
  } catch (e) { say(e.message, true); }
}

// --- wallboard and admin ---

async function loadBoard() {
  try { renderBoard(await api("GET", "/wallboard")); } catch (e) { say(e.message, true); }
}

// slCell shows a service level, marked when below the queue's target
// (by a sign and words, not by colour alone). Where whole percents would
// show the target itself (79.6 % against 80 %), it shows one decimal,
// rounded down.
function slCell(sl, target, cls) {
  if (sl === null || sl === undefined) return el("td", { class: "num " + cls }, pct(sl));
  if (sl >= target) return el("td", { class: "num sl-met " + cls }, pct(sl));
  const shown = Math.round(sl * 100) < Math.round(target * 100) ? pct(sl)
    : (Math.floor(sl * 1000 + 1e-9) / 10).toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + " %";
  return el("td", { class: "num sl-below " + cls }, shown,
    el("span", { "aria-hidden": "true" }, " ▼"), el("span", { class: "visually-hidden" }, " (" + t("below_target") + ")"));
}

function renderBoard(b) {
  board = b;
  $("board-queues").tBodies[0].replaceChildren(...b.queues.map((q) => el("tr", { "data-queue": q.queue },
    el("th", { scope: "row" }, q.queue),
    el("td", { class: "num waiting" }, q.waiting),
    el("td", { class: "num" }, Math.round(q.longest_wait_seconds) + " s"),
    el("td", { class: "num sl-target" }, t("sl_goal", { p: pct(q.service_level_target), s: Math.round(q.service_level_threshold_seconds) })),
    slCell(q.last_15m.service_level, q.service_level_target, "sl-15m"),
    slCell(q.today.service_level, q.service_level_target, "sl-today"),
    el("td", { class: "num" }, Math.round(q.today.asa_seconds) + " s"),
    el("td", { class: "num" }, pct(q.today.abandon_rate)),
    el("td", { class: "num answered" }, q.today.answered))));
  $("board-presence").replaceChildren(...["available", "busy", "away", "offline"].map((p) =>
    el("span", { "data-presence": p }, t(p) + ": " + b.by_presence[p])));
  // The board is drawn anew every 2 s: a keyboard user on an agent's row
  // (its ↩ button) stays on it, on the row once the task has left.
  const active = document.activeElement;
  const wasOn = active && active.closest && active.closest("#board-agents tr");
  const focused = wasOn ? { agent: wasOn.dataset.agent, task: active.dataset.task } : null;
  $("board-agents").tBodies[0].replaceChildren(...b.agents.map((a) => el("tr", { "data-agent": a.agent },
    el("th", { scope: "row", tabindex: "-1" }, a.agent),
    el("td", {}, t(a.busy ? "busy" : a.presence) + (a.reason ? " (" + a.reason + ")" : "")),
    el("td", { class: "held" }, Object.entries(a.tasks).map(([ch, n]) => t(ch) + " " + n).join(", ") || "–",
      ...(a.held || []).filter((h) => h.returnable).map((h) => returnButton(a.agent, h))),
    el("td", { class: "num" }, pct(a.occupancy)))));
  if (focused) {
    const row = document.querySelector('#board-agents tr[data-agent="' + CSS.escape(focused.agent) + '"]');
    const again = row && ((focused.task && row.querySelector('button.return-task[data-task="' + focused.task + '"]')) || row.querySelector("th"));
    if (again) again.focus();
  }
}

// returnButton puts a mail or chat an agent has taken back into its
// queue, for the other agents first (a supervisor's call). Once: while
// the request runs the button (in every redraw) does nothing, and says
// so, but keeps the keyboard focus, as a disabled one would not.
function returnButton(agent, h) {
  const label = t("return_task", { channel: t(h.channel), id: h.id });
  const attrs = { type: "button", class: "return-task", "data-task": h.id, title: label, "aria-label": label };
  if (returning.has(h.id)) attrs["aria-disabled"] = "true";
  return el("button", { ...attrs, onclick: async () => {
    if (returning.has(h.id)) return;
    returning.add(h.id);
    try {
      await api("POST", "/wallboard/tasks/" + h.id + "/return", { agent });
      say(t("task_returned", { id: h.id }));
    } catch (e) { say(e.message, true); } finally { returning.delete(h.id); }
  } }, "↩ #" + h.id);
}

async function loadAdmin() {
  try {
    adminData = await api("GET", "/admin");
  } catch (e) { say(e.message, true); return; }
  $("admin").hidden = false;
  const skillList = (m) => Object.entries(m || {}).map(([k, v]) => k + " " + v).join(", ") || "–";
  $("admin-queues").tBodies[0].replaceChildren(...adminData.queues.map((q) => el("tr", {},
    el("th", { scope: "row" }, q.name), el("td", {}, skillList(q.skills)),
    el("td", {}, q.channels.map((c) => t(c)).join(", ")), el("td", {}, q.strategy))));
  $("admin-agents").tBodies[0].replaceChildren(...adminData.agents.map((a) => el("tr", { "data-agent": a.id },
    el("th", { scope: "row" }, a.id), el("td", { class: "skills" }, skillList(a.skills)),
    el("td", {}, Object.entries(a.capacity).map(([c, n]) => t(c) + " " + n).join(", ")),
    el("td", {}, t(a.presence) + (a.reason ? " (" + a.reason + ")" : "")))));
  const sel = $("admin-agent");
  const keep = sel.value;
  sel.replaceChildren(...adminData.agents.map((a) => el("option", { value: a.id }, a.id)));
  if (keep) sel.value = keep;
  renderAdminAgent();
}

function renderAdminAgent() {
  const a = adminData.agents.find((x) => x.id === $("admin-agent").value);
  if (!a) return;
  const fs = $("admin-skills");
  fs.replaceChildren(el("legend", {}, t("skills")), ...adminData.skills.map((s) => el("label", {}, s + " ",
    el("input", { type: "number", min: "0", max: "5", name: s, value: a.skills[s] || 0 }))));
  $("admin-presence").value = a.presence;
}
$("admin-agent").addEventListener("change", renderAdminAgent);

$("admin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const skills = {};
  for (const i of $("admin-skills").querySelectorAll("input")) {
    const n = parseInt(i.value, 10);
    if (n > 0) skills[i.name] = n;
  }
  try {
    await api("PUT", "/admin/agents/" + encodeURIComponent($("admin-agent").value) + "/skills", { skills });
    say(t("saved"));
    loadAdmin();
  } catch (e) { say(e.message, true); }
});

$("admin-presence-save").addEventListener("click", async () => {
  const presence = $("admin-presence").value;
  const body = presence === "away" ? { presence, reason: $("admin-reason").value } : { presence };
  try {
    await api("PUT", "/admin/agents/" + encodeURIComponent($("admin-agent").value) + "/presence", body);
    say(t("saved"));
    loadAdmin();
  } catch (e) { say(e.message, true); }
});

document.addEventListener("DOMContentLoaded", start);
