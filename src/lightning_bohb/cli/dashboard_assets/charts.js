/* LightningTune charts and trials table: the same code draws `lightning-bohb plot` reports and the live dashboard.
   Input: the plain data of lightning_bohb.session.history.chart_data, with `colors` (one per outcome, from
   lightning_bohb.cli.format.OUTCOME_COLORS) and `importance` (lightning_bohb.session.importance). Plotly (bundled, no CDN).
   Each chart's title is an HTML heading above it, never under Plotly's toolbar; the best trial is marked with a star
   everywhere. Numbers: `fmt`, the rule of lightning_bohb.cli.format.number (a unit test compares them). */
(function () {
  "use strict";
  var PLOT_CONFIG = {displaylogo: false};

  function fmt(v) {
    if (typeof v !== "number") { return v === null || v === undefined ? "" : String(v); }
    if (isNaN(v)) { return "nan"; }
    if (!isFinite(v)) { return v > 0 ? "inf" : "-inf"; }
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) {
      var parts = v.toExponential(3).split("e");
      return String(+parts[0]) + "e" + String(+parts[1]);
    }
    return String(+v.toPrecision(4));
  }
  function duration(s) {  /* as Python's str(timedelta): H:MM:SS, "N day(s), H:MM:SS" past a day */
    if (typeof s !== "number" || !isFinite(s)) { return ""; }
    s = Math.max(0, Math.floor(s));
    var days = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    var text = h + ":" + (m < 10 ? "0" : "") + m + ":" + (sec < 10 ? "0" : "") + sec;
    return days ? days + (days === 1 ? " day, " : " days, ") + text : text;
  }
  function ordered(config, order) {  /* the searched names first, in the search space's order */
    var keys = Object.keys(config || {});
    var first = (order || []).filter(function (k) { return keys.indexOf(k) >= 0; });
    return first.concat(keys.filter(function (k) { return first.indexOf(k) < 0; }));
  }
  function configText(config, sep, order) {
    return ordered(config, order).map(function (k) { return k + "=" + fmt(config[k]); }).join(sep || ", ");
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c]; });
  }
  function color(data, outcome) { return (data.colors || {})[outcome] || "#7f7f7f"; }
  function isBest(data, t) { return !!data.best && data.best.trial === t.id; }
  function label(data, t) { return (isBest(data, t) ? "\u2605 " : "") + t.id; }
  function epochStep(n) { return n <= 20 ? 1 : Math.ceil(n / 20); }  /* at most ~20 labels on an epochs axis */

  /* A chart's box: an HTML heading, then the plot (created once; the heading's text updated). Every plot keeps a
     34 px band at its top for Plotly's toolbar, above its data. */
  function panel(container, key, title) {
    var id = container.id + "-" + key;
    var box = document.getElementById(id);
    if (!box) {
      box = document.createElement("figure"); box.id = id; box.className = "lb-chart";
      var heading = document.createElement("figcaption"); heading.className = "lb-chart-title"; box.appendChild(heading);
      var plot = document.createElement("div"); plot.className = "lb-plot"; box.appendChild(plot);
      container.appendChild(box);
    }
    box.firstChild.textContent = title;
    return box.lastChild;
  }

  function curves(data, container) {
    var metric = data.metric;
    var el = panel(container, "plot", "Learning curves: " + metric + " per epoch (epochs numbered from 0, as Lightning does); \u2605 the best trial");
    var maxEpoch = 0;
    var traces = data.trials.filter(function (t) { return t.metrics[metric]; }).map(function (t) {
      var best = isBest(data, t);
      maxEpoch = Math.max.apply(null, [maxEpoch].concat(t.epoch_numbers));
      var hover = escapeHtml(label(data, t)) + " (" + t.outcome + ")<br>" + escapeHtml(configText(t.config, "<br>", data.searched));
      return {x: t.epoch_numbers, y: t.metrics[metric], type: "scatter", mode: "lines+markers", name: label(data, t),
              line: {width: best ? 4 : 1.5}, marker: {size: best ? 8 : 5}, opacity: best ? 1 : 0.7,
              text: t.epoch_numbers.map(function () { return hover; }),
              hovertemplate: "%{text}<br>epoch %{x}: " + escapeHtml(metric) + "=%{y:.4g}<extra></extra>"};
    });
    Plotly.react(el, traces, {uirevision: "curves", width: 640, height: 400, margin: {t: 34, r: 10},
      xaxis: {title: {text: "epoch"}, tickmode: "linear", tick0: 0, dtick: epochStep(maxEpoch + 1)},
      yaxis: {title: {text: metric}}, legend: {font: {size: 10}}}, PLOT_CONFIG);
  }

  function rungs(data, container) {
    var trials = data.trials.slice().reverse();
    var title = "Epochs trained per trial" + (data.max_epochs ? " (of " + data.max_epochs + ")" : "") + "; colour: outcome" +
      ((data.milestones || []).length ? "; dotted: ASHA rungs" : "");
    var el = panel(container, "plot", title);
    var groups = {}, order = [];
    trials.forEach(function (t) { if (!groups[t.outcome]) { groups[t.outcome] = []; order.push(t.outcome); } groups[t.outcome].push(t); });
    var traces = order.map(function (o) {
      return {type: "bar", orientation: "h", name: o, marker: {color: color(data, o)},
              y: groups[o].map(function (t) { return label(data, t); }), x: groups[o].map(function (t) { return t.epochs; }),
              customdata: groups[o].map(function (t) { return escapeHtml(configText(t.config, "<br>", data.searched)); }), textposition: "none",
              hovertemplate: "%{y}: %{x} epochs (" + o + ")<br>%{customdata}<extra></extra>"};
    });
    var shapes = (data.milestones || []).map(function (m) {
      return {type: "line", x0: m, x1: m, yref: "paper", y0: 0, y1: 1, line: {dash: "dot", color: "#555"}};
    });
    var labels = trials.map(function (t) { return label(data, t); });
    var top = Math.max(data.max_epochs || 1, 1);
    Plotly.react(el, traces, {barmode: "stack", shapes: shapes, width: 640, uirevision: "rungs",
      xaxis: {title: {text: "epochs trained"}, tickmode: "linear", tick0: 0, dtick: epochStep(top), range: [0, top + 0.2]},
      yaxis: {automargin: true, type: "category", categoryorder: "array", categoryarray: labels, tickmode: "array", tickvals: labels, ticktext: labels},
      margin: {t: 34, r: 10}, legend: {title: {text: "outcome"}}, height: Math.max(220, 70 + 22 * trials.length)}, PLOT_CONFIG);
  }

  function withValue(data) { return data.trials.filter(function (t) { return typeof t.best === "number"; }); }
  function names(data) {
    var seen = {};
    data.trials.forEach(function (t) { Object.keys(t.config || {}).forEach(function (k) { seen[k] = true; }); });
    var searched = (data.searched || []).filter(function (k) { return seen[k]; });
    return searched.length ? searched : Object.keys(seen).sort();
  }

  function params(data, container) {
    var trials = withValue(data);
    names(data).forEach(function (name) {
      var el = panel(container, "p-" + name.replace(/[^A-Za-z0-9_-]/g, "_"), name + " vs best " + (data.metric || ""));
      var xs = trials.map(function (t) { return t.config[name]; });
      var numeric = xs.every(function (x) { return typeof x === "number"; });
      var positive = numeric && xs.length > 1 && xs.every(function (x) { return x > 0; });
      var spread = positive ? Math.max.apply(null, xs) / Math.min.apply(null, xs) : 1;
      Plotly.react(el, [{x: numeric ? xs : xs.map(String), y: trials.map(function (t) { return t.best; }), type: "scatter", mode: "markers",
        marker: {size: trials.map(function (t) { return isBest(data, t) ? 18 : 10; }),
                 symbol: trials.map(function (t) { return isBest(data, t) ? "star" : "circle"; }),
                 line: {width: trials.map(function (t) { return isBest(data, t) ? 1.5 : 0; }), color: "#222"},
                 color: trials.map(function (t) { return color(data, t.outcome); })},
        text: trials.map(function (t) { return escapeHtml(label(data, t) + " (" + t.outcome + ")<br>" + configText(t.config, "<br>", data.searched)); }),
        hovertemplate: "%{text}<br>best " + escapeHtml(data.metric || "") + "=%{y:.4g}<extra></extra>"}],
        {uirevision: name, width: 420, height: 290, showlegend: false, margin: {t: 34, r: 10, l: 60, b: 50},
         xaxis: {title: {text: name}, type: numeric ? (spread > 20 ? "log" : "linear") : "category", exponentformat: "e"},
         yaxis: {title: {text: data.metric || ""}}}, PLOT_CONFIG);
    });
  }

  /* One axis of the parallel coordinates: each value's height in [0, 1] and the ticks (log10 for positive
     numbers spanning more than a factor of 20; categories evenly spaced). */
  function axis(name, values) {
    var numeric = values.every(function (v) { return typeof v === "number"; });
    var log = false, at, ticks;
    if (numeric) {
      var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
      log = low > 0 && high / low > 20;
      var f = log ? Math.log10 : function (v) { return v; };
      var a = f(low), b = f(high);
      at = function (v) { return b > a ? (f(v) - a) / (b - a) : 0.5; };
      var unique = values.filter(function (v, i) { return values.indexOf(v) === i; });
      ticks = unique.length <= 6 ? unique : [0, 0.25, 0.5, 0.75, 1].map(function (q) { return log ? Math.pow(10, a + q * (b - a)) : a + q * (b - a); });
      ticks = ticks.map(function (v) { return {y: at(v), text: fmt(v)}; });
    } else {
      var choices = values.map(String).filter(function (v, i, all) { return all.indexOf(v) === i; }).sort();
      at = function (v) { return choices.length > 1 ? choices.indexOf(String(v)) / (choices.length - 1) : 0.5; };
      ticks = choices.map(function (c) { return {y: at(c), text: c}; });
    }
    return {label: name + (log ? " (log)" : ""), heights: values.map(at), ticks: ticks};
  }

  /* Parallel coordinates drawn as SVG lines (no WebGL, nothing the page's CSP forbids): one line a trial, through
     its values to its best metric, in its outcome's colour; the best trial thick. */
  function parcoords(data, container) {
    var trials = withValue(data);
    var el = panel(container, "plot", "Parallel coordinates: each line a trial, through its values to its best " + (data.metric || "") +
      "; colour: outcome; thick: \u2605 the best trial");
    if (trials.length < 2) { return; }
    var axes = names(data).filter(function (n) { return trials.every(function (t) { return t.config[n] !== undefined; }); })
      .map(function (n) { return axis(n, trials.map(function (t) { return t.config[n]; })); });
    axes.push(axis("best " + (data.metric || ""), trials.map(function (t) { return t.best; })));
    var xs = axes.map(function (a, j) { return j; });
    var order = trials.map(function (t, i) { return i; }).sort(function (i, j) { return isBest(data, trials[i]) - isBest(data, trials[j]); });
    var traces = order.map(function (i) {  /* the best trial last: drawn on top */
      var t = trials[i], best = isBest(data, t);
      return {type: "scatter", mode: "lines+markers", x: xs, y: axes.map(function (a) { return a.heights[i]; }), name: label(data, t),
              line: {color: color(data, t.outcome), width: best ? 5 : 1.5}, marker: {size: best ? 9 : 4, color: color(data, t.outcome)},
              opacity: best ? 1 : 0.6, hoverinfo: "text",
              text: xs.map(function () { return escapeHtml(label(data, t) + " (" + t.outcome + "): " + configText(t.config, ", ", data.searched) +
                                                           ", best " + (data.metric || "") + "=" + fmt(t.best)); })};
    });
    var shapes = xs.map(function (j) { return {type: "line", x0: j, x1: j, y0: 0, y1: 1, line: {color: "#888", width: 1}}; });
    var notes = [];
    axes.forEach(function (a, j) {
      notes.push({x: j, y: 1.1, text: "<b>" + escapeHtml(a.label) + "</b>", showarrow: false, font: {size: 11}});
      a.ticks.forEach(function (tick) { notes.push({x: j, y: tick.y, text: escapeHtml(tick.text), showarrow: false, xanchor: "right", xshift: -3, font: {size: 9, color: "#555"}}); });
    });
    Plotly.react(el, traces, {width: Math.max(640, 170 * axes.length), height: 380, showlegend: false, shapes: shapes, annotations: notes,
      uirevision: "parcoords", hovermode: "closest", margin: {t: 34, l: 50, r: 30, b: 20},
      xaxis: {visible: false, range: [-0.6, axes.length - 0.5], fixedrange: true}, yaxis: {visible: false, range: [-0.05, 1.15], fixedrange: true}},
      PLOT_CONFIG);
  }

  function importance(data, container) {
    var info = data.importance;
    if (!info) { return; }
    var el = panel(container, "plot", "Hyperparameter importance: " + info.method);
    var note = document.getElementById(container.id + "-note");
    if (!note) { note = document.createElement("p"); note.id = container.id + "-note"; note.className = "meta"; container.appendChild(note); }
    note.textContent = info.note || "";
    note.hidden = !info.note;
    var rows = (info.importances || []).slice().reverse();
    if (!rows.length) { el.hidden = true; return; }
    el.hidden = false;
    Plotly.react(el, [{type: "bar", orientation: "h", y: rows.map(function (r) { return r.name; }), x: rows.map(function (r) { return r.importance; }),
      text: rows.map(function (r) { return fmt(100 * r.importance) + "%"; }), textposition: "auto", marker: {color: "#1f77b4"},
      hovertemplate: "%{y}: %{text} of the variance<extra></extra>"}],
      {width: 640, height: Math.max(180, 60 + 34 * rows.length), margin: {t: 34, r: 10},
       xaxis: {title: {text: "share of the variance of the best " + (data.metric || "")}, range: [0, 1], tickformat: ".0%"},
       yaxis: {automargin: true}}, PLOT_CONFIG);
  }

  /* The trials table (tbody of a table whose head is: trial, status, epochs, time, last, best, config[, ...]);
     `extra(tr, t)` adds the dashboard's control cell. */
  function table(data, tbody, extra) {
    tbody.textContent = "";
    data.trials.forEach(function (t) {
      var tr = document.createElement("tr"); tr.id = "lb-trial-" + t.id;
      if (isBest(data, t)) { tr.className = "lb-best"; tr.title = "the best trial"; }
      function cell(text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) { td.className = cls; } tr.appendChild(td); return td; }
      cell(label(data, t), "lb-trial-id");
      var status = cell(t.outcome + (t.pausing ? " (pausing)" : ""), "lb-status");
      status.style.color = color(data, t.outcome);
      cell(String(t.epochs), "num"); cell(duration(t.time_s), "num"); cell(fmt(t.last), "num"); cell(fmt(t.best), "num");
      cell(configText(t.config, ", ", data.searched));
      if (extra) { extra(tr, t); }
      tbody.appendChild(tr);
    });
  }

  function render(data, ids) {
    if (!data.trials.length) { return; }
    curves(data, document.getElementById(ids.curves));
    rungs(data, document.getElementById(ids.rungs));
    parcoords(data, document.getElementById(ids.parcoords));
    importance(data, document.getElementById(ids.importance));
    params(data, document.getElementById(ids.params));
  }

  window.LBCharts = {render: render, table: table, configText: configText, fmt: fmt, duration: duration};
})();
