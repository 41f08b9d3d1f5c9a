// Coalmine web UI: live canary statuses. Served from the package; no inline script (CSP).
// Every few seconds it asks /ui/live for the statuses and updates the rows in place; when
// the server does not answer, the header says the connection is lost until it answers again.
(function () {
  "use strict";
  var EVERY_MS = 2000;
  var live = document.querySelector("[data-live]");
  var banner = document.getElementById("connection");
  if (!live) { return; }

  function setText(row, field, text) {
    var cell = row.querySelector('[data-field="' + field + '"]');
    if (cell && cell.textContent !== text) { cell.textContent = text; }
  }

  function apply(state) {
    var rows = document.querySelectorAll("[data-canary]");
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var canary = state.canaries[row.getAttribute("data-canary")];
      if (!canary) { continue; }
      var badge = row.querySelector("[data-status]");
      if (badge && badge.textContent !== canary.status) {
        badge.textContent = canary.status;
        badge.className = "badge " + canary.status;
      }
      setText(row, "last_checkin", canary.last_checkin);
      setText(row, "last_message", canary.last_message);
      setText(row, "next_due", canary.next_due);
    }
    var counts = document.querySelectorAll("[data-count]");
    for (var j = 0; j < counts.length; j++) {
      var status = counts[j].getAttribute("data-count");
      var text = (state.counts[status] || 0) + " " + status;
      if (counts[j].textContent !== text) { counts[j].textContent = text; }
    }
  }

  function connected(ok) {
    if (banner) { banner.hidden = ok; }
    document.body.setAttribute("data-connection", ok ? "ok" : "lost");
  }

  function ids() {
    var rows = document.querySelectorAll("[data-canary]");
    var found = [];
    for (var i = 0; i < rows.length; i++) { found.push(rows[i].getAttribute("data-canary")); }
    return encodeURIComponent(found.join(","));
  }

  function poll() {
    fetch("/ui/live?ids=" + ids(), { credentials: "same-origin", cache: "no-store", redirect: "error" })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("status " + answer.status); }
        return answer.json();
      })
      .then(function (state) { apply(state); connected(true); })
      .catch(function () { connected(false); })
      .then(function () { window.setTimeout(poll, EVERY_MS); });
  }
  window.setTimeout(poll, EVERY_MS);
}());
