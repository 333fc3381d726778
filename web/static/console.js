// The agent console: the screen-pop stream and the console's forms.
// Everything that came from the network (caller names, numbers, notes) is put on the page with
// textContent only, never as HTML.
(function () {
  "use strict";

  var card = document.getElementById("card");
  if (!card) { return; }
  var labels = card.dataset;
  var nodeNames = JSON.parse(card.dataset.ivrNodes || "{}");  // IVR nodes by their display names
  var streamState = document.getElementById("stream-state");
  var statusLine = document.getElementById("console-status");
  var presence = document.getElementById("presence-status");

  function text(id, value) {
    var node = document.getElementById(id);
    node.textContent = value === null || value === undefined ? "" : String(value);
    return node;
  }

  function item(parts) {
    var li = document.createElement("li");
    li.textContent = parts.filter(function (p) { return p !== "" && p !== null && p !== undefined; }).join(" · ");
    return li;
  }

  function fillList(id, rows, render) {
    var list = document.getElementById(id);
    list.replaceChildren();
    if (!rows.length) { list.appendChild(item([labels.lNone])); }
    rows.forEach(function (row) { list.appendChild(render(row)); });
  }

  function token() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function show(pop) {
    var caller = pop.caller || {};
    var call = pop.call || {};
    text("card-state", pop.state === "connected" ? labels.lConnected : labels.lRinging).dataset.state = pop.state;
    text("card-name", caller.name || caller.number || "");
    var vip = document.getElementById("card-vip");
    vip.hidden = !caller.vip;
    vip.textContent = labels.lVip;
    var frequent = document.getElementById("card-frequent");
    frequent.hidden = !caller.frequent;
    frequent.textContent = labels.lFrequent + " (" +
      labels.lCalls.replace("{n}", caller.calls_in_window).replace("{d}", caller.window_days) + ")";
    text("card-number", caller.number);
    text("card-tier", labels["lTier" + (caller.tier || "normal").charAt(0).toUpperCase() + (caller.tier || "normal").slice(1)] || caller.tier);
    text("card-region", caller.region);
    text("card-queue", call.queue);
    text("card-wait", call.wait_s === null || call.wait_s === undefined ? "" : labels.lSeconds.replace("{n}", call.wait_s));
    text("card-ivr", (call.ivr_path || []).map(function (node) { return nodeNames[node] || node; }).join(" → "));
    var script = pop.script || {};
    text("card-script", labels.locale === "zh" ? script.zh : script.en);
    fillList("card-calls", pop.last_calls || [], function (row) {
      return item([row.started_at, row.queue, row.disposition, row.wrapup_category, row.wrapup_note]);
    });
    fillList("card-case-list", pop.open_cases || [], function (row) {
      return item([row.number, row.type, row.status, row.title]);
    });
    // Frequent callers: the agent sees the prior calls first.
    var sections = document.getElementById("card-sections");
    var history = document.getElementById("card-history");
    var cases = document.getElementById("card-cases");
    if (pop.history_first) { sections.insertBefore(history, cases); } else { sections.insertBefore(cases, history); }
    var link = document.getElementById("card-case-link");
    link.hidden = !pop.case_url;
    if (pop.case_url) { link.setAttribute("href", pop.case_url); }
    document.querySelectorAll(".js-call-id").forEach(function (input) { input.value = call.id === null ? "" : call.id; });
    document.querySelectorAll(".js-token").forEach(function (input) { input.value = token(); });
    card.dataset.callId = call.id === null ? "" : call.id;
    card.dataset.eventId = pop.event_id || "";
    card.dataset.receivedAt = String(Date.now());
    card.hidden = false;
    if (pop.state === "connected" && presence) {  // the voice layer has set the presence: show it
      presence.dataset.status = "on_call";
      presence.textContent = labels.lOncall;
    }
  }

  function showPresence(status) {
    if (!presence || !status) { return; }
    presence.dataset.status = status;
    var button = document.querySelector('button[data-status="' + status + '"]');
    var named = { on_call: labels.lOncall, wrap_up: labels.lWrapup }[status];
    presence.textContent = button ? button.textContent : named || status;
  }

  function say(message, isError) {
    statusLine.textContent = message;
    statusLine.className = "flash " + (isError ? "flash-error" : "flash-info");
    statusLine.hidden = false;
  }

  function connect() {
    var source = new EventSource("/console/events");
    source.addEventListener("open", function () {
      streamState.textContent = streamState.dataset.connected;
      streamState.dataset.state = "open";
    });
    source.addEventListener("error", function () {
      streamState.textContent = streamState.dataset.lost;
      streamState.dataset.state = "lost";
    });
    source.addEventListener("screenpop", function (message) {
      try { show(JSON.parse(message.data)); } catch (err) { say(String(err), true); }
    });
    // The call moved the agent (connected, ended: wrap-up): shown without a reload.
    source.addEventListener("presence", function (message) {
      try { showPresence(JSON.parse(message.data).status); } catch (err) { say(String(err), true); }
    });
  }

  document.querySelectorAll("form.js-console-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        say(result.body.message, !result.ok);
        if (result.ok && result.body.status) { showPresence(result.body.status); }
        if (result.ok && form.id === "wrapup-form") {
          form.reset();
          card.dataset.wrappedUp = "1";
        }
        if (form.id === "transfer-form") {
          form.querySelectorAll(".js-token").forEach(function (input) { input.value = token(); });
        }
      }).catch(function (err) { say(String(err), true); });
    });
  });

  connect();
}());
