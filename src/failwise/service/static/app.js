// failwise service pages: keyboard shortcuts and live due-time timers.
// Every action is a plain form the server handles; this file only presses them sooner.
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
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.items tbody tr[data-href]"));
  var selected = -1;
  function select(index) {
    if (!rows.length) return;
    if (selected >= 0) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input")) return;
      window.location.assign(row.getAttribute("data-href"));
    });
  });

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
    if (key === "j" || key === "k") {
      if (rows.length) { select(selected + (key === "j" ? 1 : -1)); event.preventDefault(); }
      return;
    }
    if (key === "Enter" && selected >= 0) {
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
  var timers = document.querySelectorAll("time[data-due]");
  var skew = 0;
  var served = document.body.getAttribute("data-now");
  if (served) skew = parseFloat(served) - Date.now() / 1000;
  function tick() {
    var now = Date.now() / 1000 + skew;
    timers.forEach(function (timer) {
      var left = parseFloat(timer.getAttribute("data-due")) - now;
      timer.textContent = dueText(left);
      var row = timer.closest("tr");
      if (row && left < 0) row.classList.add("breached");
    });
  }
  if (timers.length) window.setInterval(tick, 1000);
})();
