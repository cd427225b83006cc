// charts.js draws the status page's charts (price; site power by fleet,
// running and waking) as inline SVG from the history embedded in the page
// (#history, the JSON of GET /api/v1/history): no network, no library. It
// marks #charts with data-rendered="ok" when done, and writes any error
// into #chart-errors (and data-rendered="error"), so that a headless
// browser can tell a drawn page from a broken one.
(function () {
  'use strict';
  var box = document.getElementById('charts');
  var errs = document.getElementById('chart-errors');
  function fail(msg) {
    box.setAttribute('data-rendered', 'error');
    errs.hidden = false;
    errs.textContent += msg + '\n';
  }
  window.addEventListener('error', function (e) {
    fail('error: ' + (e.message || e));
  });

  var H = JSON.parse(document.getElementById('history').textContent);
  var W = 900, PAD_L = 64, PAD_R = 12, PAD_T = 10, PAD_B = 26;
  var COLORS = [['#c77800', '#f2c879'], ['#2f64b8', '#a8c1ea'], ['#2c8a4b', '#a6dbb6'], ['#8a3fb0', '#d6b5e8'], ['#a23b3b', '#e6b0b0']];
  var T = H.t.map(function (s) { return s * 1000; });
  var now = Date.parse(H.time), x0 = Math.max(Date.parse(H.from), T.length ? T[0] : now);
  if (now - x0 < 60000) x0 = now - 60000;
  var off = H.tz_offset_seconds * 1000;

  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function clock(ms, secs) {
    var d = new Date(ms + off);
    var s = pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
    return secs ? s + ':' + pad2(d.getUTCSeconds()) : s;
  }
  function fmt(v) {
    var a = Math.abs(v);
    return a >= 10000 ? (v / 1000).toFixed(1) + 'k' : a >= 100 ? v.toFixed(0) : v.toFixed(1);
  }
  // nice returns about n round steps covering lo..hi.
  function ticks(lo, hi, n) {
    var raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), step = mag;
    [1, 2, 2.5, 5, 10].some(function (m) { step = m * mag; return step >= raw; });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step / 1e6; v += step) out.push(v);
    return out;
  }

  // chart returns an SVG of height h over y range lo..hi; body(x, y) gives
  // its data elements.
  function chart(id, h, lo, hi, unit, body) {
    if (hi <= lo) hi = lo + 1;
    var x = function (ms) { return PAD_L + (ms - x0) / (now - x0) * (W - PAD_L - PAD_R); };
    var y = function (v) { return PAD_T + (hi - v) / (hi - lo) * (h - PAD_T - PAD_B); };
    var s = '<svg id="' + id + '" viewBox="0 0 ' + W + ' ' + h + '" width="100%" role="img" aria-label="' + esc(unit) + '">';
    s += '<rect x="' + PAD_L + '" y="' + PAD_T + '" width="' + (W - PAD_L - PAD_R) + '" height="' + (h - PAD_T - PAD_B) + '" fill="#fff" stroke="#c9d0d6"/>';
    ticks(lo, hi, 4).forEach(function (v) {
      s += '<line x1="' + PAD_L + '" x2="' + (W - PAD_R) + '" y1="' + y(v).toFixed(1) + '" y2="' + y(v).toFixed(1) + '" stroke="#e6e9ec"/>';
      s += '<text x="' + (PAD_L - 6) + '" y="' + (y(v) + 4).toFixed(1) + '" text-anchor="end" font-size="11" fill="#5b6570">' + fmt(v) + '</text>';
    });
    var secs = now - x0 < 10 * 60000;
    for (var i = 0; i <= 5; i++) {
      var ms = x0 + (now - x0) * i / 5;
      s += '<text x="' + x(ms).toFixed(1) + '" y="' + (h - 8) + '" text-anchor="' + (i === 0 ? 'start' : i === 5 ? 'end' : 'middle') + '" font-size="11" fill="#5b6570">' + clock(ms, secs) + '</text>';
    }
    s += '<text x="' + (PAD_L + 4) + '" y="' + (PAD_T + 12) + '" font-size="11" fill="#5b6570">' + esc(unit) + '</text>';
    s += body(x, y);
    // Decisions: a marker at each, its commands in the tooltip.
    H.decisions.forEach(function (d) {
      var ms = Date.parse(d.time);
      if (ms < x0 || ms > now) return;
      var xx = x(ms).toFixed(1), fired = d.rules && d.rules.length;
      s += '<g class="decision" data-time="' + esc(d.time) + '"><title>' + esc(clock(ms, true) + ' ' + (fired ? d.rules.join(', ') + ': ' : '') + d.summary + ' (' + d.reason + ')') + '</title>' +
        '<line x1="' + xx + '" x2="' + xx + '" y1="' + PAD_T + '" y2="' + (h - PAD_B) + '" stroke="' + (fired ? '#c5321f' : '#7d8790') + '" stroke-dasharray="3 3"/>' +
        '<line x1="' + xx + '" x2="' + xx + '" y1="' + PAD_T + '" y2="' + (h - PAD_B) + '" stroke="transparent" stroke-width="7"/></g>';
    });
    return s + '</svg>';
  }

  // runs splits indices into runs where v is not null.
  function runs(v) {
    var out = [], cur = [];
    for (var i = 0; i < v.length; i++) {
      if (v[i] === null || v[i] === undefined) { if (cur.length) out.push(cur); cur = []; } else cur.push(i);
    }
    if (cur.length) out.push(cur);
    return out;
  }
  function pts(idx, x, y, v) {
    return idx.map(function (i) { return x(T[i]).toFixed(1) + ',' + y(v[i]).toFixed(1); }).join(' ');
  }

  var drawn = 0;
  // Price: the mean line over a band from minimum to maximum.
  var P = H.price_usd_mwh, lo = 0, hi = 0;
  P.forEach(function (v, i) {
    if (v === null) return;
    lo = Math.min(lo, H.price_min_usd_mwh[i]);
    hi = Math.max(hi, H.price_max_usd_mwh[i]);
  });
  var price = chart('chart-price', 200, lo, hi * 1.08, 'price, USD/MWh', function (x, y) {
    var s = '';
    runs(P).forEach(function (idx) {
      var up = idx.map(function (i) { return x(T[i]).toFixed(1) + ',' + y(H.price_max_usd_mwh[i]).toFixed(1); });
      var down = idx.slice().reverse().map(function (i) { return x(T[i]).toFixed(1) + ',' + y(H.price_min_usd_mwh[i]).toFixed(1); });
      s += '<polygon points="' + up.concat(down).join(' ') + '" fill="#f6d5cf" stroke="none"/>';
      s += '<polyline class="series" points="' + pts(idx, x, y, P) + '" fill="none" stroke="#c5321f" stroke-width="1.5"/>';
      drawn++;
    });
    return s;
  });

  // Power: each fleet's running power, then its waking power, stacked;
  // the cap in force dashed.
  var layers = [];
  H.fleets.forEach(function (f, k) {
    layers.push({ name: f.name + ' running', v: f.running_kw, color: COLORS[k % COLORS.length][0] });
    layers.push({ name: f.name + ' waking', v: f.waking_kw, color: COLORS[k % COLORS.length][1] });
  });
  var base = T.map(function () { return 0; }), top = 0;
  var stacks = layers.map(function (l) {
    var lower = base.slice();
    base = base.map(function (b, i) { return b + l.v[i]; });
    return { l: l, lower: lower, upper: base.slice() };
  });
  base.forEach(function (v) { top = Math.max(top, v); });
  H.site_cap_kw.forEach(function (v) { top = Math.max(top, v); });
  var power = chart('chart-power', 240, 0, top * 1.12, 'site power by fleet, kW', function (x, y) {
    var s = '';
    if (!T.length) return s;
    var all = T.map(function (_, i) { return i; });
    stacks.forEach(function (st) {
      var up = all.map(function (i) { return x(T[i]).toFixed(1) + ',' + y(st.upper[i]).toFixed(1); });
      var down = all.slice().reverse().map(function (i) { return x(T[i]).toFixed(1) + ',' + y(st.lower[i]).toFixed(1); });
      s += '<polygon class="series" data-layer="' + esc(st.l.name) + '" points="' + up.concat(down).join(' ') + '" fill="' + st.l.color + '" stroke="none"><title>' + esc(st.l.name) + '</title></polygon>';
      drawn++;
    });
    s += '<polyline class="cap" points="' + pts(all, x, y, H.site_cap_kw) + '" fill="none" stroke="#1d232a" stroke-dasharray="6 4"/>';
    return s;
  });

  var legend = '<div class="legend">' + layers.map(function (l) {
    return '<span><i style="background:' + l.color + '"></i>' + esc(l.name) + '</span>';
  }).join('') + '<span><i class="dash"></i>site cap</span><span><i class="mark"></i>decision (red: a rule fired)</span></div>';
  box.innerHTML = price + power + legend +
    (T.length ? '' : '<p class="sub">no history yet: the charts fill as the controller runs</p>');
  box.setAttribute('data-points', String(T.length));
  box.setAttribute('data-decisions', String(box.querySelectorAll('g.decision').length / 2));
  box.setAttribute('data-series', String(drawn));
  if (!box.hasAttribute('data-rendered')) box.setAttribute('data-rendered', 'ok');
})();
