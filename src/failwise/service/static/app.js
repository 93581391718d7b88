// failwise service pages: keyboard shortcuts, live due-time timers and queue changes.
// Every action is a plain form the server handles; this file only presses them sooner,
// and refreshes the queue (or flags the open item) when another reviewer changes it.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function keyed(key) {
    return document.querySelector('[data-key="' + key + '"]');
  }

  function press(element) {
    if (!element) return false;
    var tag = element.tagName.toLowerCase();
    if (tag === "input" || tag === "textarea") {
      element.focus();
      if (element.select) element.select();
    } else {
      element.click();
    }
    return true;
  }

  function toggleKeymap() {
    var dialog = document.getElementById("keymap");
    if (!dialog || !dialog.showModal) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  // -- moving through the queue list -------------------------------------------------------
  var rows = [];
  var selected = -1;
  function select(index) {
    if (!rows.length) return;
    if (selected >= 0 && rows[selected]) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({ block: "nearest" });
    // the row's link takes the focus, so assistive technology reads the item, Tab moves on
    // from it, and Enter opens it as any link
    var link = rows[selected].querySelector("td.input a");
    if (link) link.focus({ preventScroll: true });
  }
  function bindRows() {
    var before = selected >= 0 && rows[selected] ? rows[selected].getAttribute("data-href") : null;
    rows = Array.prototype.slice.call(document.querySelectorAll("table.items tbody tr[data-href]"));
    selected = -1;
    rows.forEach(function (row, index) {
      if (row.getAttribute("data-href") === before) { selected = index; row.classList.add("selected"); }
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button, input, summary, details")) return;
        window.location.assign(row.getAttribute("data-href"));
      });
    });
  }
  bindRows();

  // -- one submission at a time: a held key must not resolve twice ---------------------------
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "?") { toggleKeymap(); event.preventDefault(); return; }
    var keymap = document.getElementById("keymap");
    if (keymap && keymap.open) return;  // no shortcut acts on the page behind the help
    if (key === "j" || key === "k") {
      if (rows.length) { select(selected + (key === "j" ? 1 : -1)); event.preventDefault(); }
      return;
    }
    var inRow = selected >= 0 && (event.target === document.body || rows[selected].contains(event.target));
    if (key === "Enter" && inRow) {
      window.location.assign(rows[selected].getAttribute("data-href"));
      event.preventDefault();
      return;
    }
    if (key.length === 1 && press(keyed(key))) event.preventDefault();
  });

  document.querySelectorAll('[data-action="keymap"]').forEach(function (button) {
    button.addEventListener("click", toggleKeymap);
  });

  // -- due-time timers ---------------------------------------------------------------------
  function dueText(seconds) {
    var late = seconds < 0;
    var s = Math.abs(seconds);
    var text = s < 60 ? Math.round(s) + " s" : s < 3600 ? Math.round(s / 60) + " min"
      : s < 172800 ? (s / 3600).toFixed(1) + " h" : Math.round(s / 86400) + " d";
    return late ? "overdue " + text : "due in " + text;
  }
  var skew = 0;
  var served = document.body.getAttribute("data-now");
  if (served) skew = parseFloat(served) - Date.now() / 1000;
  function tick() {
    var now = Date.now() / 1000 + skew;
    document.querySelectorAll("time[data-due]").forEach(function (timer) {
      var left = parseFloat(timer.getAttribute("data-due")) - now;
      timer.textContent = dueText(left);
      var row = timer.closest("tr");
      if (row && left < 0) row.classList.add("breached");
    });
  }
  if (document.querySelector("time[data-due]")) window.setInterval(tick, 1000);

  // -- queue changes made elsewhere (GET /v1/queue:changes, polled) ---------------------------
  var live = document.querySelector("[data-cursor]");
  if (!live || !window.fetch || !window.DOMParser) return;
  var cursor = live.getAttribute("data-cursor");
  var me = live.getAttribute("data-me");
  var itemId = live.getAttribute("data-live-item");
  var status = live.querySelector("[data-live-status]");
  var delay = 1500;
  var stopped = false;

  function describe(change) {
    var who = change.reviewer === me ? "you (in another tab, or an admin for you)"
      : change.reviewer || "someone";
    var what = {
      created: "queued", claimed: "claimed by " + who, released: "released by " + who,
      resolved: "resolved by " + who, reopened: "reopened by " + who,
      expired: "lease of " + who + " ran out"
    }[change.change] || change.change;
    return "#" + change.item_id + " " + what;
  }
  function byOthers(changes) {
    return changes.filter(function (change) {
      return change.change === "created" || change.change === "expired" || change.reviewer !== me;
    });
  }
  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function swap(fresh, selector) {
    var old = document.querySelector(selector);
    var next = fresh.querySelector(selector);
    if (old && next) old.replaceWith(document.importNode(next, true));
  }

  function refreshQueue(changes) {
    var others = byOthers(changes);
    var url = live.getAttribute("data-live-queue") || "/review";
    return fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        [".queue .counts", ".queue .total", "table.items tbody", ".queue nav.pages", "aside.side"]
          .forEach(function (selector) { swap(fresh, selector); });
        bindRows();
        tick();
        var changed = {};
        others.forEach(function (change) { changed["/review/items/" + change.item_id] = describe(change); });
        rows.forEach(function (row) {
          var text = changed[row.getAttribute("data-href")];
          if (text) { row.classList.add("changed"); row.setAttribute("title", text + " at " + clock()); }
        });
        if (status && others.length) {
          status.textContent = "Updated " + clock() + ": " + others.slice(-3).map(describe).join(", ") +
            (others.length > 3 ? " and " + (others.length - 3) + " more" : "") + ".";
          status.hidden = false;
        }
      });
  }

  // Every action of this page loads a new page (with a new cursor), so a change of its item
  // reported here was made elsewhere.
  function flagItem(changes) {
    var mine = changes.filter(function (change) { return String(change.item_id) === itemId; });
    var last = mine[mine.length - 1];
    if (!last || !status) return;
    if (last.change === "expired" && last.reviewer === me) {
      status.textContent =
        "Your lease ran out: you can still resolve this item until someone else claims it.";
    } else {
      status.textContent = "Changed elsewhere: " + describe(last) + " at " + clock() + ". ";
      var reload = document.createElement("a");
      reload.href = window.location.pathname;
      reload.textContent = "Reload the item";
      status.appendChild(reload);
      live.classList.add("stale");
    }
    status.hidden = false;
  }

  function schedule() {
    if (!stopped) window.setTimeout(poll, delay);
  }
  function poll() {
    if (document.hidden) { schedule(); return; }
    fetch("/v1/queue:changes?after=" + encodeURIComponent(cursor), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) { stopped = true; return null; }
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        if (!data) return null;
        delay = data.poll_ms || 1500;
        cursor = String(data.cursor);
        var changes = data.changes || [];
        if (itemId) { flagItem(changes); return null; }
        if (data.reset || changes.length) return refreshQueue(changes);
        return null;
      })
      .then(function () { schedule(); }, function () { delay = Math.min(delay * 2, 30000); schedule(); });
  }
  live.setAttribute("data-live", "on");
  schedule();

  // -- the lease of the open item, renewed while the page is open and shown -------------------
  var lease = itemId ? live.querySelector("[data-lease-until]") : null;
  var csrf = document.querySelector('input[name="csrf_token"]');
  if (!lease || !csrf) return;
  var leaseS = parseFloat(lease.getAttribute("data-lease-s")) || 300;
  var every = Math.max(2, leaseS / 3) * 1000;
  var note = lease.querySelector("[data-lease-note]");
  if (note) note.textContent = "; renewed while this page is open";
  function renew() {
    if (stopped || live.classList.contains("stale")) return;
    if (document.hidden) { window.setTimeout(renew, every); return; }
    fetch("/v1/queue/" + encodeURIComponent(itemId) + "/renew", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf.value },
      body: JSON.stringify({ lease_s: leaseS })
    })
      .then(function (response) {
        if (response.ok) return response.json();
        if (response.status >= 400 && response.status < 500) {
          if (note) note.textContent = "; it could not be renewed (" + response.status + "): reload the item";
          return null;
        }
        throw new Error(String(response.status));
      })
      .then(function (item) {
        if (!item) return;
        var until = lease.querySelector("[data-lease-time]");
        if (until && item.lease_expires_at) {
          var text = new Date(item.lease_expires_at * 1000).toISOString().replace("T", " ").slice(0, 19);
          until.textContent = text;
          until.setAttribute("datetime", text);
          lease.setAttribute("data-lease-until", String(item.lease_expires_at));
        }
        window.setTimeout(renew, every);
      }, function () { window.setTimeout(renew, every); });
  }
  window.setTimeout(renew, every);
})();
