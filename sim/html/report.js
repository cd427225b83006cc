// report.js draws switchd sim's HTML report from the JSON in #data. It is
// inlined into the page (no network). Data columns hold every interval;
// drawing reduces them to one column per pixel (minimum and maximum, mean
// or last value), so a year draws as fast as a day.
(function () {
  'use strict';
  var body = document.body;
  window.addEventListener('error', function (e) {
    body.setAttribute('data-rendered', 'error: ' + (e.message || e));
  });

  var D = JSON.parse(document.getElementById('data').textContent);

  // ---- data --------------------------------------------------------------
  function undelta(x) {
    if (x === null || x === undefined) return null;
    var scale = 1, a = x;
    if (!Array.isArray(x)) { scale = x.scale; a = x.d; }
    var out = new Float64Array(a.length), p = 0;
    for (var i = 0; i < a.length; i++) {
      if (a[i] === null) { out[i] = NaN; continue; }
      p += a[i];
      out[i] = p / scale;
    }
    return out;
  }
  function plain(a) {
    var out = new Float64Array(a.length);
    for (var i = 0; i < a.length; i++) out[i] = a[i] === null ? NaN : a[i];
    return out;
  }
  var T = undelta(D.t), N = T.length, END = D.end;
  // expand undoes a stride: the value kept for each interval's block.
  function expand(v, stride) {
    if (stride <= 1) return v;
    var out = new Float64Array(N);
    for (var j = 0; j < N; j++) out[j] = v[Math.min(Math.floor(j / stride), v.length - 1)];
    out[N - 1] = v[v.length - 1];
    return out;
  }
  var price = plain(D.price);
  var grid = undelta(D.grid);
  var breakeven = D.breakeven ? undelta(D.breakeven.v) : null;
  var runs = D.runs.map(function (r) {
    var o = { label: r.label, kind: r.kind, final: r.final, cpNet: r.cpNet, P: expand(undelta(r.profit), r.stride) };
    if (r.vsAlwaysOn) o.A = expand(undelta(r.vsAlwaysOn), r.stride);
    if (r.vsThreshold) o.H = expand(undelta(r.vsThreshold), r.stride);
    if (r.detail) {
      o.power = undelta(r.detail.power);
      o.curtailed = undelta(r.detail.curtailed);
      o.counts = r.detail.counts.map(undelta);
    }
    return o;
  });
  var policyRuns = runs.filter(function (r) { return r.kind === 'policy'; });
  var detailRuns = policyRuns.filter(function (r) { return r.counts; });
  var baseline = {};
  runs.forEach(function (r) { if (r.kind !== 'policy') baseline[r.kind] = r; });

  var PALETTE = ['#1f5fbf', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#5c940d', '#e67700',
    '#364fc7', '#a61e4d', '#087f5b', '#5f3dc4'];
  policyRuns.forEach(function (r, i) { r.color = PALETTE[i % PALETTE.length]; });
  if (baseline.always_on) baseline.always_on.color = '#868e96';
  if (baseline.threshold_debounce) baseline.threshold_debounce.color = '#212529';

  // ---- geometry ----------------------------------------------------------
  var W = 1320, ML = 84, MR = 16, MT = 8, MB = 22, PW = W - ML - MR;
  var view = { a: 0, b: END };
  var charts = {};
  function setup(name, h) {
    var c = document.getElementById('c-' + name);
    var o = c.nextElementSibling;
    var dpr = window.devicePixelRatio || 1;
    [c, o].forEach(function (cv) {
      cv.width = Math.round(W * dpr);
      cv.height = Math.round(h * dpr);
      cv.style.width = W + 'px';
      cv.style.height = h + 'px';
      cv.getContext('2d').setTransform(dpr, 0, 0, dpr, 0, 0);
    });
    var ch = { name: name, c: c, o: o, ctx: c.getContext('2d'), octx: o.getContext('2d'), h: h, top: MT, bottom: h - MB, drawn: 0 };
    charts[name] = ch;
    return ch;
  }

  function upper(a, x) { // first index with a[i] > x
    var lo = 0, hi = a.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (a[m] > x) hi = m; else lo = m + 1; }
    return lo;
  }
  // columns maps each pixel column to the intervals it overlaps.
  function columns() {
    var lo = new Int32Array(PW), hi = new Int32Array(PW);
    var span = (view.b - view.a) / PW;
    var i = Math.max(0, upper(T, view.a) - 1);
    for (var p = 0; p < PW; p++) {
      var ta = view.a + p * span, tb = ta + span;
      if (tb <= T[0] || ta >= END) { lo[p] = -1; hi[p] = -1; continue; }
      while (i + 1 < N && T[i + 1] <= ta) i++;
      var j = i;
      while (j + 1 < N && T[j + 1] < tb) j++;
      lo[p] = i; hi[p] = j;
      i = j;
    }
    return { lo: lo, hi: hi };
  }
  function envelope(a, C) {
    var mn = new Float64Array(PW), mx = new Float64Array(PW), last = new Float64Array(PW);
    for (var p = 0; p < PW; p++) {
      var lo = NaN, hi = NaN, l = NaN;
      if (C.lo[p] >= 0) {
        for (var i = C.lo[p]; i <= C.hi[p]; i++) {
          var v = a[i];
          if (v !== v) continue;
          if (!(v >= lo)) lo = v;
          if (!(v <= hi)) hi = v;
          l = v;
        }
      }
      mn[p] = lo; mx[p] = hi; last[p] = l;
    }
    return { mn: mn, mx: mx, last: last };
  }
  function mean(a, C, k) {
    var out = new Float64Array(PW);
    for (var p = 0; p < PW; p++) {
      var s = 0, n = 0;
      if (C.lo[p] >= 0) {
        for (var i = C.lo[p]; i <= C.hi[p]; i++) { var v = a[i]; if (v === v) { s += v; n++; } }
      }
      out[p] = n ? s / n * (k || 1) : NaN;
    }
    return out;
  }
  function range(arrs) {
    var lo = Infinity, hi = -Infinity;
    arrs.forEach(function (a) {
      if (!a) return;
      for (var i = 0; i < a.length; i++) { var v = a[i]; if (v === v) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    });
    return [lo, hi];
  }

  // ---- scales and axes ---------------------------------------------------
  function niceStep(span, n) {
    var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }
  function linear(lo, hi, ch) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    var pad = (hi - lo) * 0.04;
    lo -= pad; hi += pad;
    var step = niceStep(hi - lo, Math.max(2, Math.floor((ch.bottom - ch.top) / 45)));
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return { f: function (v) { return ch.bottom - (v - lo) / (hi - lo) * (ch.bottom - ch.top); }, ticks: ticks, step: step };
  }
  function sl(v) { return v >= 0 ? Math.log10(1 + v / 10) : -Math.log10(1 - v / 10); }
  function symlog(lo, hi, ch) {
    lo = Math.min(lo, 0); if (!(hi > lo)) hi = lo + 10;
    var a = sl(lo), b = sl(hi), pad = (b - a) * 0.04; a -= pad; b += pad;
    var f = function (v) { return ch.bottom - (sl(v) - a) / (b - a) * (ch.bottom - ch.top); };
    var cand = [-5000, -2000, -1000, -500, -200, -100, -50, -20, -10, 0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000];
    var ticks = [], lastY = Infinity;
    cand.forEach(function (v) {
      if (v < lo - 1e-9 || v > hi * 1.05 + 1e-9) return;
      var y = f(v);
      if (lastY - y >= 16) { ticks.push(v); lastY = y; }
    });
    return { f: f, ticks: ticks, step: 1 };
  }
  function fmtNum(v, step) {
    var a = Math.abs(step || v);
    if (a >= 1e6 || Math.abs(v) >= 1e7) return +(v / 1e6).toFixed(a >= 1e6 ? 0 : a >= 1e5 ? 1 : 2) + 'M';
    if (a >= 1e3 || Math.abs(v) >= 1e4) return +(v / 1e3).toFixed(a >= 1e3 ? 0 : 1) + 'k';
    return String(+v.toFixed(a >= 1 ? 0 : 2));
  }
  function usd(v) {
    var s = Math.round(Math.abs(v)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (v < 0 ? '−$' : '$') + s;
  }
  var MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function local(s) { return new Date((D.t0 + s + D.tzOffset) * 1000); }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function fmtTime(s, withTime) {
    var d = local(s);
    var out = d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
    return withTime ? out + ' ' + pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) : out;
  }
  function timeTicks() {
    var span = view.b - view.a, want = span / (PW / 100);
    var ticks = [];
    var steps = [900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
    var st = 0;
    for (var k = 0; k < steps.length; k++) if (steps[k] >= want) { st = steps[k]; break; }
    if (st) {
      var off = D.t0 + D.tzOffset;
      var first = Math.ceil((view.a + off) / st) * st - off;
      if (st === 604800) first = Math.ceil((view.a + off - 345600) / st) * st - off + 345600; // Mondays
      for (var s = first; s <= view.b; s += st) {
        var d = local(s), lab;
        if (st < 86400) lab = (d.getUTCHours() === 0 ? MON[d.getUTCMonth()] + ' ' + d.getUTCDate() + ' ' : '') + pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
        else lab = MON[d.getUTCMonth()] + ' ' + d.getUTCDate();
        ticks.push([s, lab]);
      }
      return ticks;
    }
    var months = want > 86400 * 62 ? 3 : 1;
    var d0 = local(view.a);
    var y = d0.getUTCFullYear(), m = d0.getUTCMonth() + 1;
    for (; ; m++) {
      if (m > 11) { y++; m -= 12; }
      if (m % months) continue;
      var sec = Date.UTC(y, m, 1) / 1000 - D.t0 - D.tzOffset;
      if (sec > view.b) break;
      if (sec >= view.a) ticks.push([sec, m === 0 ? MON[m] + ' ' + y : MON[m]]);
    }
    return ticks;
  }
  function X(s) { return ML + (s - view.a) / (view.b - view.a) * PW; }

  function frame(ch, ys, fmt) {
    var ctx = ch.ctx;
    ctx.clearRect(0, 0, W, ch.h);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, ch.h);
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#e9ecef';
    ctx.fillStyle = '#555';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ys.ticks.forEach(function (v) {
      var y = Math.round(ys.f(v)) + 0.5;
      if (y < ch.top - 1 || y > ch.bottom + 1) return;
      ctx.beginPath(); ctx.moveTo(ML, y); ctx.lineTo(ML + PW, y); ctx.stroke();
      ctx.fillText(fmt(v, ys.step), ML - 6, y);
    });
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    timeTicks().forEach(function (t) {
      var x = Math.round(X(t[0])) + 0.5, half = ctx.measureText(t[1]).width / 2;
      ctx.beginPath(); ctx.moveTo(x, ch.top); ctx.lineTo(x, ch.bottom); ctx.stroke();
      // Keep edge labels inside the canvas.
      ctx.fillText(t[1], Math.min(Math.max(x, ML + half), ML + PW - half), ch.bottom + 5);
    });
    ctx.strokeStyle = '#adb5bd';
    ctx.strokeRect(ML + 0.5, ch.top + 0.5, PW - 1, ch.bottom - ch.top - 1);
  }
  function clip(ch) {
    ch.ctx.save();
    ch.ctx.beginPath();
    ch.ctx.rect(ML, ch.top, PW, ch.bottom - ch.top);
    ch.ctx.clip();
  }
  // band draws a step series' per-pixel extent: min to max, joined to the
  // previous column's last value so steps stay connected.
  function band(ch, env, f, color) {
    var ctx = ch.ctx, prev = NaN;
    ctx.fillStyle = color;
    for (var p = 0; p < PW; p++) {
      var mn = env.mn[p], mx = env.mx[p];
      if (mn !== mn) { prev = NaN; continue; }
      if (prev === prev) { mn = Math.min(mn, prev); mx = Math.max(mx, prev); }
      var y1 = f(mx), y2 = f(mn);
      ctx.fillRect(ML + p, y1 - 0.5, 1, Math.max(1.5, y2 - y1 + 1));
      prev = env.last[p];
      ch.drawn++;
    }
  }
  function polyline(ch, vals, f, color, width, dash) {
    var ctx = ch.ctx, on = false;
    ctx.strokeStyle = color;
    ctx.lineWidth = width || 1.5;
    ctx.setLineDash(dash || []);
    ctx.beginPath();
    for (var p = 0; p < PW; p++) {
      var v = vals[p];
      if (v !== v) { on = false; continue; }
      var x = ML + p + 0.5, y = f(v);
      if (on) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      on = true;
      ch.drawn++;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  function hline(ch, y, color, dash, label, side) {
    y = Math.min(Math.max(y, ch.top + 1), ch.bottom - 1);
    var ctx = ch.ctx;
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.setLineDash(dash || []);
    ctx.beginPath(); ctx.moveTo(ML, Math.round(y) + 0.5); ctx.lineTo(ML + PW, Math.round(y) + 0.5); ctx.stroke();
    ctx.setLineDash([]);
    if (label) {
      ctx.fillStyle = color; ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = side === 'left' ? 'left' : 'right';
      // Above the line, or below it when the line is at the top.
      var below = y - ch.top < 16;
      ctx.textBaseline = below ? 'top' : 'bottom';
      ctx.fillText(label, side === 'left' ? ML + 6 : ML + PW - 6, below ? y + 3 : y - 2);
    }
  }
  function peaks(ch) {
    var ctx = ch.ctx;
    D.peaks.forEach(function (pk) {
      if (pk.end < view.a || pk.start > view.b) return;
      var x1 = X(pk.start), x2 = Math.max(X(pk.end), x1 + 2);
      ctx.fillStyle = 'rgba(224,49,49,0.55)';
      ctx.fillRect(x1, ch.top, x2 - x1, ch.bottom - ch.top);
      ctx.beginPath();
      var xm = (x1 + x2) / 2;
      ctx.moveTo(xm - 5, ch.top); ctx.lineTo(xm + 5, ch.top); ctx.lineTo(xm, ch.top + 8); ctx.closePath();
      ctx.fillStyle = '#c92a2a'; ctx.fill();
    });
  }
  function legend(name, items) {
    var el = document.getElementById('legend-' + name);
    el.innerHTML = '';
    items.forEach(function (it) {
      var s = document.createElement('span'); s.className = 'k';
      var i = document.createElement('i');
      i.className = it.style || '';
      i.style.background = it.color;
      i.style.borderColor = it.color;
      s.appendChild(i);
      s.appendChild(document.createTextNode(it.label));
      el.appendChild(s);
    });
  }

  // ---- charts ------------------------------------------------------------
  var selected = 0; // index in detailRuns
  function detail() { return detailRuns[selected] || null; }

  function drawPrice(C) {
    var ch = charts.price, linearScale = document.getElementById('linear').checked;
    var env = envelope(price, C), beMean = breakeven ? mean(breakeven, C) : null;
    var r = range([env.mn, env.mx, beMean]);
    if (!(r[0] <= r[1])) r = [0, 1];
    var ys = linearScale ? linear(Math.min(r[0], 0), r[1], ch) : symlog(r[0], r[1], ch);
    frame(ch, ys, fmtNum);
    clip(ch);
    var d = detail(), items = [{ label: 'price (min–max per pixel)', color: '#1c3f94', style: 'line' }];
    if (d) {
      var curt = envelope(d.curtailed, C), ctx = ch.ctx;
      for (var p = 0; p < PW; p++) {
        var c = curt.mx[p];
        if (c > 0) {
          ctx.fillStyle = 'rgba(253,126,20,' + (0.18 + 0.5 * Math.min(1, c / D.devices)).toFixed(3) + ')';
          ctx.fillRect(ML + p, ch.top, 1, ch.bottom - ch.top);
        }
      }
      items.push({ label: 'curtailed: devices held off that always_on runs (' + d.label + ')', color: 'rgba(253,126,20,0.6)' });
    }
    peaks(ch);
    if (beMean) {
      polyline(ch, beMean, ys.f, '#2b8a3e', 1.5, [5, 3]);
      items.push({ label: D.breakeven.label, color: '#2b8a3e', style: 'dash' });
    }
    band(ch, env, ys.f, '#1c3f94');
    ch.ctx.restore();
    if (D.peaks.length) items.push({ label: 'coincident peak interval', color: 'rgba(224,49,49,0.7)' });
    if (!linearScale) items.push({ label: 'scale: linear to ±10, logarithmic beyond', color: 'transparent' });
    legend('price', items);
  }

  function drawGrid(C) {
    var ch = charts.grid;
    if (!ch) return;
    var env = envelope(grid, C), r = range([env.mn, env.mx]);
    if (!(r[0] <= r[1])) r = [0, 1];
    var ys = linear(r[0], r[1], ch);
    frame(ch, ys, fmtNum);
    clip(ch);
    peaks(ch);
    band(ch, env, ys.f, '#0b7285');
    ch.ctx.restore();
    var items = [{ label: 'system load (min–max per pixel)', color: '#0b7285', style: 'line' }];
    if (D.peaks.length) items.push({ label: 'coincident peak interval', color: 'rgba(224,49,49,0.7)' });
    legend('grid', items);
  }

  var FLEET_HUES = [28, 265, 145, 200, 340, 55];
  function layerColor(k) {
    var l = D.layers[k], fleets = [];
    D.layers.forEach(function (x) { if (fleets.indexOf(x.fleet) < 0) fleets.push(x.fleet); });
    var h = FLEET_HUES[fleets.indexOf(l.fleet) % FLEET_HUES.length];
    if (l.mode === 'off') return 'hsl(' + h + ',35%,82%)';
    if (l.mode === 'inference') return 'hsl(' + h + ',60%,48%)';
    return 'hsl(' + h + ',75%,52%)';
  }
  function drawPower(C) {
    var ch = charts.power, d = detail();
    if (!d) {
      frame(ch, linear(0, D.capKW, ch), fmtNum);
      legend('power', [{ label: 'no per-interval detail kept for this run', color: 'transparent' }]);
      return;
    }
    var means = D.layers.map(function (l, k) { return mean(d.counts[k], C, l.kw); });
    var avg = mean(d.power, C);
    var top = 0;
    for (var p = 0; p < PW; p++) {
      var s = 0;
      for (var k = 0; k < means.length; k++) if (means[k][p] === means[k][p]) s += means[k][p];
      top = Math.max(top, s, avg[p] === avg[p] ? avg[p] : 0);
    }
    var ys = linear(0, Math.max(top, D.capKW), ch);
    frame(ch, ys, fmtNum);
    clip(ch);
    var ctx = ch.ctx;
    for (p = 0; p < PW; p++) {
      var y0 = 0;
      for (k = 0; k < means.length; k++) {
        var v = means[k][p];
        if (!(v > 0)) continue;
        var ya = ys.f(y0), yb = ys.f(y0 + v);
        ctx.fillStyle = layerColor(k);
        ctx.fillRect(ML + p, yb, 1, ya - yb + 0.5);
        y0 += v;
        ch.drawn++;
      }
    }
    peaks(ch);
    polyline(ch, avg, ys.f, '#212529', 1);
    hline(ch, ys.f(D.capKW), '#c92a2a', [6, 4]);
    ctx.restore();
    var items = D.layers.map(function (l, k) { return { label: l.fleet + ' ' + l.mode, color: layerColor(k) }; });
    items.push({ label: 'average draw (incl. devices in transition)', color: '#212529', style: 'line' });
    items.push({ label: 'interconnect cap ' + fmtNum(D.capKW) + ' kW', color: '#c92a2a', style: 'dash' });
    items.push({ label: 'bands: devices steady in each mode at each interval\'s end × mode power (' + d.label + ')', color: 'transparent' });
    legend('power', items);
  }

  function lastOf(a, C) { return envelope(a, C).last; }
  // atEnd reports whether the view shows the trace's end, where the totals
  // (the oracle, coincident-peak charges) are marked.
  function atEnd() { return view.b >= END - 1; }
  function drawProfit(C) {
    var ch = charts.profit, lines = [];
    policyRuns.concat([baseline.always_on, baseline.threshold_debounce]).forEach(function (r) {
      if (r) lines.push({ r: r, v: lastOf(r.P, C) });
    });
    var arrs = lines.map(function (l) { return l.v; });
    var rr = range(arrs);
    // The oracle is a total at the trace's end, and profit starts at zero:
    // a zoomed view scales to its own lines.
    if (atEnd()) D.oracles.forEach(function (o) { rr[1] = Math.max(rr[1], o.profit); rr[0] = Math.min(rr[0], o.profit); });
    if (view.a <= 0) rr[0] = Math.min(0, rr[0]);
    var ys = linear(rr[0], rr[1], ch);
    frame(ch, ys, fmtNum);
    clip(ch);
    if (atEnd()) D.oracles.forEach(function (o) {
      hline(ch, ys.f(o.profit), '#000', [2, 3], o.label + ' bound ' + usd(o.profit) + ' — a total over the whole trace (no per-interval path)');
    });
    var items = [];
    lines.slice().reverse().forEach(function (l) {
      polyline(ch, l.v, ys.f, l.r.color, l.r.kind === 'policy' ? 2 : 1.5, l.r.kind === 'policy' ? [] : [6, 3]);
    });
    lines.forEach(function (l) {
      items.push({ label: l.r.label + ' ' + usd(l.r.final), color: l.r.color, style: l.r.kind === 'policy' ? 'line' : 'dash' });
    });
    ch.ctx.restore();
    items.push({ label: 'oracle (perfect-foresight bound, total)', color: '#000', style: 'dash' });
    legend('profit', items);
  }

  function drawMargin(C) {
    var ch = charts.margin, lines = [];
    policyRuns.forEach(function (r) {
      lines.push({ r: r, v: lastOf(r.A, C), dash: [], what: 'over always_on' });
      lines.push({ r: r, v: lastOf(r.H, C), dash: [6, 3], what: 'over threshold_debounce' });
    });
    var rr = range(lines.map(function (l) { return l.v; }));
    var marks = [];
    D.oracles.forEach(function (o) {
      marks.push({ v: o.profit - o.alwaysOn, label: o.label + ' over always_on ' + usd(o.profit - o.alwaysOn) });
      marks.push({ v: o.profit - o.threshold, label: o.label + ' over threshold_debounce ' + usd(o.profit - o.threshold) });
    });
    var nets = [];
    policyRuns.forEach(function (r) {
      if (!r.cpNet) return;
      nets.push({ r: r, v: r.cpNet.vsAlwaysOn, fill: true });
      nets.push({ r: r, v: r.cpNet.vsThreshold, fill: false });
    });
    if (!atEnd()) { marks = []; nets = []; }
    marks.forEach(function (m) { rr[0] = Math.min(rr[0], m.v); rr[1] = Math.max(rr[1], m.v); });
    nets.forEach(function (m) { rr[0] = Math.min(rr[0], m.v); rr[1] = Math.max(rr[1], m.v); });
    var ys = linear(Math.min(0, rr[0]), Math.max(0, rr[1]), ch);
    frame(ch, ys, fmtNum);
    clip(ch);
    hline(ch, ys.f(0), '#868e96', []);
    var ctx = ch.ctx;
    marks.forEach(function (m) {
      var y = ys.f(m.v);
      ctx.fillStyle = '#000';
      ctx.beginPath(); ctx.moveTo(ML + PW - 1, y); ctx.lineTo(ML + PW - 9, y - 5); ctx.lineTo(ML + PW - 9, y + 5); ctx.closePath(); ctx.fill();
      ctx.font = '11px system-ui, sans-serif'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
      ctx.fillText(m.label, ML + PW - 12, y);
    });
    lines.forEach(function (l) { polyline(ch, l.v, ys.f, l.r.color, 1.75, l.dash); });
    nets.forEach(function (m, i) {
      var x = ML + PW - 24 - 10 * Math.floor(i / 2), y = ys.f(m.v);
      ctx.beginPath(); ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
      ctx.lineWidth = 2; ctx.strokeStyle = m.r.color; ctx.fillStyle = m.fill ? m.r.color : '#fff';
      ctx.fill(); ctx.stroke();
    });
    ctx.restore();
    var items = [];
    policyRuns.forEach(function (r) {
      items.push({ label: r.label + ' over always_on', color: r.color, style: 'line' });
      items.push({ label: 'over threshold_debounce', color: r.color, style: 'dash' });
    });
    items.push({ label: '▶ oracle over each baseline (total)', color: 'transparent' });
    if (nets.length) items.push({ label: '● / ○ net of coincident-peak charges, over always_on / threshold_debounce (billed for the season, so marked at the end)', color: 'transparent' });
    legend('margin', items);
  }

  // ---- interaction -------------------------------------------------------
  function drawAll() {
    var C = columns();
    Object.keys(charts).forEach(function (k) { charts[k].drawn = 0; });
    drawPrice(C);
    drawGrid(C);
    drawPower(C);
    drawProfit(C);
    drawMargin(C);
    clearOverlays();
  }
  function clearOverlays() {
    Object.keys(charts).forEach(function (k) { charts[k].octx.clearRect(0, 0, W, charts[k].h); });
  }
  function timeAt(x) { return view.a + (x - ML) / PW * (view.b - view.a); }
  function cursor(x) {
    clearOverlays();
    Object.keys(charts).forEach(function (k) {
      var ch = charts[k], o = ch.octx;
      o.strokeStyle = 'rgba(0,0,0,0.45)'; o.lineWidth = 1;
      o.beginPath(); o.moveTo(Math.round(x) + 0.5, ch.top); o.lineTo(Math.round(x) + 0.5, ch.bottom); o.stroke();
    });
    var s = timeAt(x), i = Math.max(0, upper(T, s) - 1);
    if (s < 0 || s > END) { readout.textContent = ''; return; }
    var parts = [fmtTime(T[i], true)];
    if (price[i] === price[i]) parts.push('price ' + price[i].toFixed(2) + ' USD/MWh');
    var d = detail();
    if (d) {
      parts.push('draw ' + fmtNum(d.power[i]) + ' kW');
      if (d.curtailed[i] > 0) parts.push(d.curtailed[i] + ' devices curtailed');
    }
    policyRuns.slice(0, 3).forEach(function (r) { parts.push(r.label + ' ' + usd(r.P[i])); });
    readout.textContent = parts.join(' · ');
  }
  var readout = document.getElementById('readout');
  var drag = null;
  function bind(ch) {
    var o = ch.o;
    function px(e) { var r = o.getBoundingClientRect(); return Math.min(ML + PW, Math.max(ML, e.clientX - r.left)); }
    o.addEventListener('mousedown', function (e) { drag = { ch: ch, x0: px(e) }; e.preventDefault(); });
    o.addEventListener('mousemove', function (e) {
      var x = px(e);
      cursor(x);
      if (drag && drag.ch === ch) {
        ch.octx.fillStyle = 'rgba(28,63,148,0.15)';
        ch.octx.fillRect(Math.min(drag.x0, x), ch.top, Math.abs(x - drag.x0), ch.bottom - ch.top);
      }
    });
    o.addEventListener('mouseleave', function () { clearOverlays(); readout.textContent = ''; });
    o.addEventListener('dblclick', function () { view = { a: 0, b: END }; drawAll(); });
    window.addEventListener('mouseup', function (e) {
      if (!drag || drag.ch !== ch) return;
      var x = px(e), a = timeAt(Math.min(drag.x0, x)), b = timeAt(Math.max(drag.x0, x));
      drag = null;
      if (Math.abs(X(b) - X(a)) >= 4 && b - a >= 900) { view = { a: a, b: b }; drawAll(); }
    });
  }

  // ---- start -------------------------------------------------------------
  setup('price', 300);
  if (grid) setup('grid', 150); else document.getElementById('chart-grid').style.display = 'none';
  setup('power', 280);
  setup('profit', 280);
  setup('margin', 220);
  Object.keys(charts).forEach(function (k) { bind(charts[k]); });
  document.getElementById('reset').addEventListener('click', function () { view = { a: 0, b: END }; drawAll(); });
  document.getElementById('linear').addEventListener('change', drawAll);
  var sel = document.getElementById('run');
  detailRuns.forEach(function (r, i) {
    var opt = document.createElement('option'); opt.value = String(i); opt.textContent = r.label; sel.appendChild(opt);
  });
  if (detailRuns.length < 2) document.getElementById('runpick').style.display = 'none';
  sel.addEventListener('change', function () { selected = +sel.value; drawAll(); });

  if (D.peaks.length) {
    var html = '<h2>Coincident peak intervals</h2><table><tr><th>start</th><th>end</th><th></th></tr>';
    D.peaks.forEach(function (p) {
      html += '<tr><td>' + fmtTime(p.start, true) + '</td><td>' + fmtTime(p.end, true) + '</td><td></td></tr>';
    });
    var box = document.getElementById('peaks');
    box.innerHTML = html + '</table>';
    var cells = box.querySelectorAll('tr td:last-child');
    D.peaks.forEach(function (p, i) { cells[i].textContent = p.label; });
  }

  // A view can be linked: #2024-08-18/2024-08-22 (dates in the trace's
  // offset) opens on those days.
  var hm = /^#(\d{4}-\d\d-\d\d)\/(\d{4}-\d\d-\d\d)$/.exec(location.hash);
  if (hm) {
    var a = Date.parse(hm[1] + 'T00:00:00Z') / 1000 - D.t0 - D.tzOffset;
    var b = Date.parse(hm[2] + 'T00:00:00Z') / 1000 - D.t0 - D.tzOffset;
    if (b > a && b > 0 && a < END) view = { a: Math.max(0, a), b: Math.min(END, b) };
  }
  drawAll();

  // For the browser test: where each plot area is and how much it drew.
  var layout = Object.keys(charts).map(function (k) {
    var ch = charts[k], r = ch.c.getBoundingClientRect();
    return { chart: k, x: Math.round(r.left + window.scrollX + ML), y: Math.round(r.top + window.scrollY + ch.top), w: PW, h: ch.bottom - ch.top, drawn: ch.drawn };
  });
  document.getElementById('layout').textContent = JSON.stringify(layout);
  if (!body.hasAttribute('data-rendered')) body.setAttribute('data-rendered', 'ok');
})();
