/* LightningTune charts: the same code draws `lightning-bohb plot` reports and the live dashboard.
   Input: the plain data of lightning_bohb.session.history.chart_data. Plotly (bundled, no CDN). */
(function () {
  "use strict";
  var COLORS = {finished: "#2ca02c", "stopped early": "#d62728", running: "#1f77b4", paused: "#ff7f0e",
                pending: "#7f7f7f", failed: "#8c564b"};

  function fmt(v) {
    if (typeof v === "number") { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(4)); }
    return v === null || v === undefined ? "" : String(v);
  }
  function configText(config, sep) {
    return Object.keys(config || {}).map(function (k) { return k + "=" + fmt(config[k]); }).join(sep || ", ");
  }
  function outcome(t) {
    if (t.status === "TERMINATED") { return t.stopped_early ? "stopped early" : "finished"; }
    if (t.status === "RUNNING") { return "running"; }
    if (t.status === "PAUSED") { return "paused"; }
    if (t.status === "ERROR") { return "failed"; }
    return "pending";
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c]; });
  }

  function curves(data, el, metric) {
    metric = metric || data.metric;
    var traces = data.trials.filter(function (t) { return t.metrics[metric]; }).map(function (t) {
      var hover = escapeHtml(t.id) + " (" + outcome(t) + ")<br>" + escapeHtml(configText(t.config, "<br>"));
      return {x: t.iterations, y: t.metrics[metric], type: "scatter", mode: "lines+markers", name: t.id,
              text: t.iterations.map(function () { return hover; }),
              hovertemplate: "%{text}<br>epoch %{x}: " + escapeHtml(metric) + "=%{y:.4g}<extra></extra>"};
    });
    Plotly.react(el, traces, {title: {x: 0.01, xanchor: "left", text: "Learning curves: " + metric + " per epoch"}, uirevision: "curves", width: 640, height: 420,
      xaxis: {title: {text: "epoch"}, dtick: 1}, yaxis: {title: {text: metric}}, margin: {t: 40, r: 10}, legend: {font: {size: 10}}},
      {displaylogo: false});
  }

  function rungs(data, el) {
    var trials = data.trials.slice().reverse();
    var groups = {};
    trials.forEach(function (t) { var o = outcome(t); (groups[o] = groups[o] || []).push(t); });
    var traces = Object.keys(groups).map(function (o) {
      return {type: "bar", orientation: "h", name: o, marker: {color: COLORS[o]},
              y: groups[o].map(function (t) { return t.id; }), x: groups[o].map(function (t) { return t.epochs; }),
              customdata: groups[o].map(function (t) { return escapeHtml(configText(t.config, "<br>")); }), textposition: "none",
              hovertemplate: "%{y}: %{x} epochs (" + o + ")<br>%{customdata}<extra></extra>"};
    });
    var shapes = (data.milestones || []).map(function (m) {
      return {type: "line", x0: m, x1: m, yref: "paper", y0: 0, y1: 1, line: {dash: "dot", color: "#555"}};
    });
    var notes = (data.milestones || []).map(function (m, i) {
      return {x: m, yref: "paper", y: 1.02, text: "rung " + (i + 1), showarrow: false, font: {size: 10}};
    });
    var title = "Epochs reached per trial" + (data.max_epochs ? " (of " + data.max_epochs + ")" : "") +
      (shapes.length ? ": ASHA rungs dotted" : "") + "; red: stopped early by the scheduler";
    Plotly.react(el, traces, {title: {x: 0.01, xanchor: "left", text: title, font: {size: 14}}, barmode: "stack", shapes: shapes, width: 640, annotations: notes,
      uirevision: "rungs", xaxis: {title: {text: "epochs"}, dtick: 1, range: [0, Math.max(data.max_epochs || 1, 1) + 0.2]},
      yaxis: {automargin: true, type: "category"}, margin: {t: 50, r: 10}, height: Math.max(220, 60 + 22 * trials.length)},
      {displaylogo: false});
  }

  function params(data, container) {
    var names = {};
    data.trials.forEach(function (t) { Object.keys(t.config || {}).forEach(function (k) { names[k] = true; }); });
    var withBest = data.trials.filter(function (t) { return typeof t.best === "number"; });
    Object.keys(names).sort().forEach(function (name) {
      var id = "lb-param-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
      var el = document.getElementById(id);
      if (!el) { el = document.createElement("div"); el.id = id; el.className = "lb-param-chart"; container.appendChild(el); }
      var xs = withBest.map(function (t) { return t.config[name]; });
      var numeric = xs.every(function (x) { return typeof x === "number"; });
      var positive = numeric && xs.length > 1 && xs.every(function (x) { return x > 0; });
      var spread = positive ? Math.max.apply(null, xs) / Math.min.apply(null, xs) : 1;
      Plotly.react(el, [{x: numeric ? xs : xs.map(String), y: withBest.map(function (t) { return t.best; }), type: "scatter", mode: "markers",
        marker: {size: 10, color: withBest.map(function (t) { return COLORS[outcome(t)]; })},
        text: withBest.map(function (t) { return escapeHtml(t.id + " (" + outcome(t) + ")<br>" + configText(t.config, "<br>")); }),
        hovertemplate: "%{text}<br>best " + escapeHtml(data.metric || "") + "=%{y:.4g}<extra></extra>"}],
        {title: {x: 0.01, xanchor: "left", text: name + " vs best " + (data.metric || ""), font: {size: 13}}, uirevision: id, width: 420,
         xaxis: {title: {text: name}, type: numeric ? (spread > 20 ? "log" : "linear") : "category"},
         yaxis: {title: {text: data.metric || ""}}, margin: {t: 36, r: 10, l: 60, b: 50}, height: 300, showlegend: false},
        {displaylogo: false});
    });
  }

  function render(data, ids) {
    if (!data.trials.length) { return; }
    curves(data, document.getElementById(ids.curves));
    rungs(data, document.getElementById(ids.rungs));
    params(data, document.getElementById(ids.params));
  }

  window.LBCharts = {render: render, configText: configText, fmt: fmt, outcome: outcome};
})();
