// Flynn dashboard: keeps the server-rendered page live. Forms post in the
// background; the controller's events (GET /live) re-render the sections
// that may have changed (?section=NAME); the app's log follows. Without
// this script every page still works, by plain form posts.
"use strict";
(function () {
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var status = document.getElementById("status");
  function say(text, isError) {
    if (!status) return;
    status.textContent = text || "";
    status.classList.toggle("error", !!isError);
  }

  // Re-render every section (but one holding the focus or an open
  // <details>, which a person is using) from the server.
  var pending = null, running = false, again = false;
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; load(); }, 150);
  }
  function load() {
    if (running) { again = true; return; }
    running = true;
    var secs = Array.prototype.slice.call(document.querySelectorAll("[data-section]"));
    Promise.all(secs.map(function (sec) {
      var name = sec.getAttribute("data-section");
      return fetch(location.pathname + "?section=" + encodeURIComponent(name), {
        headers: { "X-Flynn-Dashboard": "1" }, credentials: "same-origin"
      }).then(function (r) {
        if (r.status === 401) { location.href = "/login"; return; }
        if (!r.ok) return;
        return r.text().then(function (html) {
          var cur = document.querySelector('[data-section="' + name + '"]');
          if (!cur || cur.contains(document.activeElement) || cur.querySelector("details[open]")) return;
          var t = document.createElement("template");
          t.innerHTML = html.trim();
          var next = t.content.firstElementChild;
          if (next && cur.outerHTML !== next.outerHTML) { cur.replaceWith(next); enhance(next); }
        });
      }).catch(function () {});
    })).then(function () {
      running = false;
      if (again) { again = false; load(); }
    });
  }

  // Forms post with fetch; the answer is said in the status line.
  function enhance(root) {
    root.querySelectorAll("form[data-enhance]").forEach(function (f) {
      if (f.dataset.enhanced) return;
      f.dataset.enhanced = "1";
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var btn = f.querySelector('button[type="submit"]');
        if (btn) btn.disabled = true;
        say("Working…");
        fetch(f.action, {
          method: "POST", body: new URLSearchParams(new FormData(f)), credentials: "same-origin",
          headers: { "X-Flynn-Dashboard": "1", "X-CSRF-Token": csrf ? csrf.content : "" }
        }).then(function (r) {
          return r.json().catch(function () { return { error: "HTTP " + r.status }; });
        }).then(function (out) {
          if (btn) btn.disabled = false;
          if (out.error) { say(out.error, true); return; }
          say(out.message);
          if (out.location && out.location !== location.pathname) { location.href = out.location; return; }
          f.querySelectorAll("input:not([type=hidden]):not([type=number])").forEach(function (i) { i.value = ""; });
          if (document.activeElement) document.activeElement.blur();
          load();
        }).catch(function (e) { if (btn) btn.disabled = false; say(String(e), true); });
      });
    });
    // Delete stays disabled until the name is typed.
    root.querySelectorAll("input[data-confirm]").forEach(function (i) {
      var btn = i.form.querySelector("[data-needs-confirm]");
      var check = function () { btn.disabled = i.value !== i.getAttribute("data-confirm"); };
      i.addEventListener("input", check);
      check();
    });
  }
  enhance(document);

  // Live: any change of the app's (or, elsewhere, any) objects.
  // A stream the browser gave up on (it does, when a request fails before
  // the stream began) is opened again, so the page never goes stale.
  function stream(url, handlers) {
    var es = new EventSource(url);
    Object.keys(handlers).forEach(function (name) { es.addEventListener(name, handlers[name]); });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) setTimeout(function () { stream(url, handlers); }, 1000);
    });
    return es;
  }
  if (csrf && document.querySelector("[data-section]") && window.EventSource) {
    var app = document.body.getAttribute("data-live-app");
    // "open" catches up with what changed while the stream was down.
    stream("/live" + (app ? "?app=" + encodeURIComponent(app) : ""), { change: refresh, open: refresh });
  }

  // The log: follows, keeps the last 500 lines, filtered by process type.
  var log = document.querySelector("[data-log]");
  if (log && window.EventSource) {
    var filter = document.querySelector("[data-log-filter]");
    var src = null;
    var follow = function () {
      if (src) src.close();
      var empty = true;
      log.innerHTML = '<span class="muted">No lines yet.</span>';
      var q = filter && filter.value ? "?process_type=" + encodeURIComponent(filter.value) : "";
      src = new EventSource(log.getAttribute("data-log") + q);
      src.addEventListener("error", function () {
        // Given up on: follow again, from the last lines.
        if (src.readyState === EventSource.CLOSED) setTimeout(follow, 1000);
      });
      src.addEventListener("line", function (ev) {
        var l = JSON.parse(ev.data);
        if (empty) { log.textContent = ""; empty = false; }
        var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        var row = document.createElement("div");
        if (l.stderr) row.className = "stderr";
        row.textContent = l.time.slice(11, 19) + " " + (l.type || "run") + "." + (l.job || "").slice(0, 8) + ": " + l.text;
        log.appendChild(row);
        while (log.childNodes.length > 500) log.removeChild(log.firstChild);
        if (atEnd) log.scrollTop = log.scrollHeight;
      });
    };
    if (filter) filter.addEventListener("change", follow);
    follow();
  }
})();
