// dirigent web chat widget. A site adds one tag:
//   <script src="https://chat.example.com/widget.js" data-queue="support" async></script>
// Frame protocol: see the chat package's documentation.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__dirigentChat) return;
  window.__dirigentChat = true;

  var base = new URL(script.src, location.href);
  var wsURL = (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + "/ws";
  var queue = script.getAttribute("data-queue") || "";
  var langSource = (script.getAttribute("data-lang") || document.documentElement.lang || navigator.language || "en").toLowerCase();
  var lang = langSource.indexOf("de") === 0 ? "de" : "en";
  var TEXT = {
    de: {
      open: "Chat", title: "Chat mit uns", close: "Schließen", end: "Chat beenden",
      intro: "Wie dürfen wir Sie ansprechen? Alle Angaben sind freiwillig.",
      name: "Name", email: "E-Mail", phone: "Telefon", start: "Chat starten",
      placeholder: "Ihre Nachricht …", send: "Senden", typing: " schreibt …",
      joined: " ist jetzt für Sie da.", you: "Sie", reconnecting: "Verbindung wird wiederhergestellt …",
      transcript: "Protokoll per E-Mail an:", transcriptSend: "Anfordern", again: "Neuer Chat",
      errors: {
        identity: "Diese E-Mail-Adresse oder Telefonnummer können wir nicht verwenden. Bitte prüfen Sie sie.",
        rate: "Bitte einen Moment – das waren zu viele Nachrichten auf einmal.",
        sessions: "Von Ihrem Anschluss sind schon zu viele Chats offen."
      }
    },
    en: {
      open: "Chat", title: "Chat with us", close: "Close", end: "End chat",
      intro: "How may we address you? Everything is optional.",
      name: "Name", email: "E-mail", phone: "Phone", start: "Start chat",
      placeholder: "Your message …", send: "Send", typing: " is typing …",
      joined: " is with you now.", you: "You", reconnecting: "Reconnecting …",
      transcript: "Transcript by e-mail to:", transcriptSend: "Request", again: "New chat",
      errors: {
        identity: "We cannot use this e-mail address or phone number. Please check it.",
        rate: "One moment, please – that was too many messages at once.",
        sessions: "Too many chats are open from your connection."
      }
    }
  }[lang];

  var storeKey = "dirigent-chat:" + base.host + ":" + queue;
  var state = load(); // {token}
  // The highest message number this page shows: a reconnect asks for
  // what came after it, a reloaded page (0) for the whole chat.
  var pageSeq = 0;
  var ws = null, retry = 0, retryTimer = null, ended = false, stopped = false;
  var pending = {};   // id → {text, el}: sent, not yet acknowledged
  var seen = {};      // seq → true
  var typingTimer = null, typingSent = false, idCounter = 0, joinedName = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode: no resume across reloads */ }
  }

  var style = document.createElement("style");
  style.textContent = /*CSS*/"";
  document.head.appendChild(style);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  var root = el("div", "dg-chat");
  root.id = "dg-chat";
  root.setAttribute("lang", lang);
  var button = el("button", "dg-chat-button", TEXT.open);
  button.id = "dg-chat-button";
  button.type = "button";
  var box = el("section", "dg-chat-box");
  box.id = "dg-chat-box";
  box.hidden = true;
  box.setAttribute("aria-label", TEXT.title);
  var head = el("header", "dg-chat-head");
  head.appendChild(el("span", "dg-chat-title", TEXT.title));
  var closeBtn = el("button", "dg-chat-close", "×");
  closeBtn.type = "button";
  closeBtn.title = TEXT.close;
  head.appendChild(closeBtn);
  box.appendChild(head);

  var intro = el("form", "dg-chat-intro");
  intro.id = "dg-chat-intro";
  intro.appendChild(el("p", "", TEXT.intro));
  function field(name, label, type) {
    var l = el("label", "", label);
    var i = el("input");
    i.name = name; i.type = type; i.id = "dg-chat-" + name;
    i.autocomplete = name === "phone" ? "tel" : name;
    l.appendChild(i);
    intro.appendChild(l);
    return i;
  }
  var nameIn = field("name", TEXT.name, "text");
  var emailIn = field("email", TEXT.email, "email");
  var phoneIn = field("phone", TEXT.phone, "tel");
  var startBtn = el("button", "dg-chat-start", TEXT.start);
  startBtn.id = "dg-chat-start";
  startBtn.type = "submit";
  intro.appendChild(startBtn);
  box.appendChild(intro);

  var log = el("div", "dg-chat-log");
  log.id = "dg-chat-log";
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  box.appendChild(log);
  var status = el("div", "dg-chat-status");
  status.id = "dg-chat-status";
  box.appendChild(status);

  var transcriptForm = el("form", "dg-chat-transcript");
  transcriptForm.id = "dg-chat-transcript";
  transcriptForm.hidden = true;
  var tLabel = el("label", "", TEXT.transcript);
  var tInput = el("input");
  tInput.type = "email"; tInput.required = true; tInput.id = "dg-chat-transcript-email";
  tLabel.appendChild(tInput);
  transcriptForm.appendChild(tLabel);
  var tBtn = el("button", "", TEXT.transcriptSend);
  tBtn.type = "submit";
  transcriptForm.appendChild(tBtn);
  box.appendChild(transcriptForm);

  var form = el("form", "dg-chat-form");
  form.id = "dg-chat-form";
  var input = el("textarea");
  input.id = "dg-chat-input";
  input.rows = 2;
  input.placeholder = TEXT.placeholder;
  input.setAttribute("aria-label", TEXT.placeholder);
  form.appendChild(input);
  var sendBtn = el("button", "dg-chat-send", TEXT.send);
  sendBtn.id = "dg-chat-send";
  sendBtn.type = "submit";
  form.appendChild(sendBtn);
  box.appendChild(form);
  var endBtn = el("button", "dg-chat-end", TEXT.end);
  endBtn.id = "dg-chat-end";
  endBtn.type = "button";
  box.appendChild(endBtn);

  root.appendChild(box);
  root.appendChild(button);
  (document.body || document.documentElement).appendChild(root);

  function showChat(started) {
    intro.hidden = started;
    form.hidden = !started;
    endBtn.hidden = !started;
    if (started) input.focus();
  }
  showChat(!!state.token);

  button.addEventListener("click", function () {
    box.hidden = !box.hidden;
    if (!box.hidden && state.token && !ws) connect({});
  });
  closeBtn.addEventListener("click", function () { box.hidden = true; });
  intro.addEventListener("submit", function (ev) {
    ev.preventDefault();
    ended = false;
    intro.classList.remove("dg-again");
    log.textContent = "";
    seen = {};
    pageSeq = 0;
    showChat(true);
    connect({ name: nameIn.value.trim(), email: emailIn.value.trim(), phone: phoneIn.value.trim() });
  });

  function line(cls, who, text) {
    var row = el("div", "dg-msg " + cls);
    if (who) row.appendChild(el("span", "dg-who", who));
    row.appendChild(el("span", "dg-text", text));
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    return row;
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function connect(who) {
    if (ws) return;
    stopped = false;
    clearTimeout(retryTimer);
    var hello = { type: "hello", lang: lang };
    if (queue) hello.queue = queue;
    if (state.token) {
      hello.session = state.token;
      hello.last_seq = pageSeq;
    } else {
      if (who.name) hello.name = who.name;
      if (who.email) hello.email = who.email;
      if (who.phone) hello.phone = who.phone;
    }
    ws = new WebSocket(wsURL);
    ws.onopen = function () {
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      receive(f);
    };
    ws.onclose = function () {
      ws = null;
      if (ended || stopped) return;
      status.textContent = TEXT.reconnecting;
      retry = Math.min(retry + 1, 5);
      retryTimer = setTimeout(function () { connect({}); }, 500 * Math.pow(2, retry - 1));
    };
  }

  function receive(f) {
    switch (f.type) {
      case "welcome":
        retry = 0;
        status.textContent = "";
        if (!f.resumed) {
          if (state.token) { log.textContent = ""; seen = {}; pageSeq = 0; }
          state = { token: f.session };
          save();
        }
        // Messages the server has not acknowledged are sent again; their
        // ids make sure each is stored once.
        Object.keys(pending).forEach(function (id) {
          send({ type: "message", id: id, text: pending[id].text });
        });
        break;
      case "message":
        if (f.id && pending[f.id]) {
          pending[f.id].el.classList.remove("dg-pending");
          delete pending[f.id];
        } else if (!seen[f.seq]) {
          var who = f.from === "customer" ? TEXT.you : (f.name || "");
          line("dg-" + f.from, who, f.text);
        }
        seen[f.seq] = true;
        if (f.seq > pageSeq) pageSeq = f.seq;
        if (f.from === "agent") status.textContent = "";
        break;
      case "typing":
        status.textContent = f.active ? (f.name || "") + TEXT.typing : "";
        break;
      case "agent_joined":
        // A resumed chat hears who is there again; say it once.
        if (f.name !== joinedName) line("dg-system dg-joined", "", (f.name || "") + TEXT.joined);
        joinedName = f.name;
        break;
      case "notice":
        line("dg-system dg-notice-" + f.code, "", f.text);
        if (f.code === "closed" || f.code === "nobody") transcriptForm.hidden = false;
        if (f.code === "transcript") transcriptForm.hidden = true;
        // The agent left: whoever takes over joins anew, and types no more.
        if (f.code === "returned") { joinedName = null; status.textContent = ""; }
        if (f.code === "ended") finish();
        break;
      case "error":
        line("dg-system dg-error dg-error-" + f.code, "", TEXT.errors[f.code] || f.text);
        if (f.code === "ended") finish();
        // What the page itself got wrong would go wrong again: no retry.
        // A refused address sends the customer back to the form.
        if (f.code === "identity") {
          stopped = true;
          state = {};
          save();
          showChat(false);
        } else if (f.code !== "rate" && f.code !== "sessions" && f.code !== "internal") {
          stopped = true;
        }
        break;
    }
  }

  function finish() {
    ended = true;
    state = {};
    save();
    pending = {};
    form.hidden = true;
    endBtn.hidden = true;
    transcriptForm.hidden = true;
    intro.hidden = false;
    intro.classList.add("dg-again"); // only the button: the name is known
    startBtn.textContent = TEXT.again;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    idCounter++;
    var id = Date.now().toString(36) + "-" + idCounter;
    var row = line("dg-customer dg-pending", TEXT.you, text);
    pending[id] = { text: text, el: row };
    input.value = "";
    stopTyping();
    send({ type: "message", id: id, text: text });
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", function () {
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    if (!typingSent) typingSent = send({ type: "typing", active: true });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  });
  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSent) send({ type: "typing", active: false });
    typingSent = false;
  }
  transcriptForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    send({ type: "transcript", email: tInput.value.trim() });
  });
  endBtn.addEventListener("click", function () {
    if (!send({ type: "end" })) finish();
  });

  if (state.token) connect({});
})();
