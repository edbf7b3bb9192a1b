/* LightningTune dashboard: polls the server (which reads session files) and draws with LBCharts.
   The token came once in the start URL: the server exchanged it for a cookie and a clean URL, so links carry
   no token; a control (POST) carries it in a header, which another site's page cannot set. */
(function () {
  "use strict";
  function meta(name) { return document.querySelector('meta[name="' + name + '"]').getAttribute("content"); }
  var TOKEN = meta("lb-token"), READ_ONLY = meta("lb-read-only") === "true", POLL = parseInt(meta("lb-poll"), 10) || 1500;
  var params = new URLSearchParams(window.location.search);
  var KEY = params.get("session");
  var fmt = LBCharts.fmt;

  function url(path, extra) {
    var q = new URLSearchParams(extra || {}).toString();
    return q ? path + "?" + q : path;
  }
  function get(path, extra) {
    return fetch(url(path, extra), {headers: {"X-LB-Token": TOKEN}, cache: "no-store", credentials: "same-origin"}).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) { throw new Error(body.error || r.statusText); } return body; });
    });
  }
  function post(body) {
    return fetch("/api/control", {method: "POST", headers: {"X-LB-Token": TOKEN, "Content-Type": "application/json"},
                                  body: JSON.stringify(body), credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (b) { return {ok: r.ok, body: b}; }); })
      .then(function (res) { showMessage(res.ok ? res.body.message : "error: " + (res.body.error || "refused")); poll(); });
  }
  function cell(tr, text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) { td.className = cls; } tr.appendChild(td); return td; }
  function showMessage(text) { var el = document.getElementById("lb-message"); el.hidden = !text; el.textContent = text || ""; }

  function renderSessions(data) {
    var body = document.querySelector("#lb-sessions tbody");
    body.textContent = "";
    data.sessions.forEach(function (s) {
      var tr = document.createElement("tr");
      var a = document.createElement("a"); a.href = url("/", {session: s.key}); a.textContent = s.key;
      var td = document.createElement("td"); td.appendChild(a); tr.appendChild(td);
      cell(tr, s.state, "status-" + String(s.state).split(" ")[0]);
      cell(tr, s.started_at || ""); cell(tr, s.paused_at || "");
      cell(tr, s.problem ? s.problem : s.running + " / " + s.done + " / " + s.total, "num");
      cell(tr, s.best === null || s.best === undefined ? "" : s.metric + "=" + fmt(s.best) + " (\u2605 " + s.best_trial + ")");
      body.appendChild(tr);
    });
    if (!data.sessions.length) { var tr = document.createElement("tr"); cell(tr, "No sessions under " + data.root + " yet."); body.appendChild(tr); }
  }

  function trialButton(td, label, action, trialId) {
    var b = document.createElement("button");
    b.textContent = label; b.className = "lb-trial-" + action; b.setAttribute("data-trial", trialId);
    b.addEventListener("click", function () { post({session: KEY, action: "trial_" + action, trial: trialId}); });
    td.appendChild(b);
  }

  function renderSession(d) {
    var charts = d.charts;
    document.getElementById("lb-title").textContent = "Session " + (d.session_id || d.key) + ": " + d.state;
    document.getElementById("lb-title").className = "status-" + String(d.state).split(" ")[0];
    var strategy = d.strategy && d.strategy.name ? d.strategy.name : "";
    document.getElementById("lb-meta").textContent = "experiment " + (d.experiment || "?") + " \u00b7 " + strategy +
      " \u00b7 started " + d.started_at + " \u00b7 updated " + d.updated_at + " \u00b7 pauses " + d.pause_count +
      " \u00b7 trials " + d.running + " running / " + d.done + " done / " + d.total + " \u00b7 " + d.folder;
    document.getElementById("lb-best-line").textContent = charts.best ?
      "\u2605 Best so far: trial " + charts.best.trial + ", " + charts.metric + "=" + fmt(charts.best.value) : "No trial has reported yet.";
    document.getElementById("lb-controls").hidden = READ_ONLY;
    document.getElementById("lb-pause").disabled = !d.is_running || d.pause_pending;
    document.getElementById("lb-quit").disabled = !d.is_running;
    document.getElementById("lb-resume").disabled = !d.resumable;
    var paused = d.resumable && d.resume_command;
    document.getElementById("lb-resume-box").hidden = !paused;
    document.getElementById("lb-resume-command").textContent = paused ? d.resume_command : "";
    if (d.message) { showMessage(d.message); }
    var metric = charts.metric || "";
    document.getElementById("lb-last-h").textContent = "last " + metric;
    document.getElementById("lb-best-h").textContent = "best " + metric;
    document.querySelectorAll(".lb-ctl").forEach(function (el) { el.hidden = READ_ONLY; });
    var bohb = d.strategy && (d.strategy.name === "bohb" || d.strategy.name === "hyperband");  // brackets move their trials together
    LBCharts.table(charts, document.querySelector("#lb-trials tbody"), function (tr, t) {
      var td = cell(tr, "", "lb-ctl");
      td.hidden = READ_ONLY;
      if (READ_ONLY || !(d.is_running || d.resumable)) { return; }
      if ((t.status === "RUNNING" || t.status === "PENDING") && !t.pausing && !bohb) { trialButton(td, "Pause", "pause", t.id); }
      if (t.held || t.pausing) { trialButton(td, "Continue", "continue", t.id); }
      if (t.status === "RUNNING" || t.status === "PENDING" || t.status === "PAUSED") { trialButton(td, "Stop", "stop", t.id); }
    });
    LBCharts.render(charts, {curves: "lb-curves", rungs: "lb-rungs", parcoords: "lb-parcoords", importance: "lb-importance", params: "lb-params"});
    var searched = document.getElementById("lb-best-searched");
    if (searched.textContent !== d.best_searched) { searched.textContent = d.best_searched; }
    var best = document.getElementById("lb-best");
    if (best.textContent !== d.best_config) { best.textContent = d.best_config; }
    document.getElementById("lb-download").href = url("/api/best_config", {key: KEY});
    document.getElementById("lb-log-box").hidden = !d.resume_log;
    document.getElementById("lb-log").textContent = d.resume_log || "";
    document.body.setAttribute("data-state", d.state);
  }

  function poll() {
    var request = KEY ? get("/api/session", {key: KEY}).then(renderSession) : get("/api/sessions").then(renderSessions);
    return request.catch(function (err) { showMessage("error: " + err.message); });
  }

  document.getElementById("lb-sessions-view").hidden = !!KEY;
  document.getElementById("lb-session-view").hidden = !KEY;
  document.getElementById("lb-pause").addEventListener("click", function () { post({session: KEY, action: "pause"}); });
  document.getElementById("lb-quit").addEventListener("click", function () {
    if (window.confirm("Quit now? Running trials lose the epoch in flight.")) { post({session: KEY, action: "quit"}); }
  });
  document.getElementById("lb-resume").addEventListener("click", function () { post({session: KEY, action: "resume"}); });
  document.getElementById("lb-copy").addEventListener("click", function () {
    var text = document.getElementById("lb-best").textContent;
    if (navigator.clipboard) { navigator.clipboard.writeText(text).then(function () { showMessage("Best config copied."); }); }
  });
  poll();
  setInterval(poll, POLL);
})();
