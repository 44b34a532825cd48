/* Millwright dashboards: draws charts from the JSON a page embeds (no network, no CDN).
   Every chart repeats numbers that are also in a table; series differ by dash and marker,
   not by colour alone. */
(function () {
  "use strict";
  var COLOURS = ["#0b4f9c", "#a1261b", "#176a2c", "#6b3fa0", "#8a5a00", "#00707a", "#444", "#b0306a", "#3d6b00", "#7a4b2a"];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];
  var MARKS = ["circle", "rect", "triangle", "diamond", "pin", "arrow", "roundRect"];
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }

  function timeSeries(target, source) {
    var d = data(source), el = document.getElementById(target);
    var xs = d.days.map(function (s) { return Date.parse(s + "T00:00:00Z") / 1000; });
    var keys = Object.keys(d.series), plants = [];
    keys.forEach(function (k) { var p = k.split("|")[0]; if (plants.indexOf(p) < 0) plants.push(p); });
    var series = [{}], cols = [xs];
    keys.forEach(function (k, i) {
      var parts = k.split("|"), p = plants.indexOf(parts[0]);
      var dash = parts.length > 1 ? (parts[1] === "realized" ? DASHES[1] : DASHES[0]) : DASHES[i % DASHES.length];
      series.push({ label: k.replace("|", " "), stroke: COLOURS[p % COLOURS.length], dash: dash, width: 2,
        points: { show: true, size: 4 + (p % 3) * 2 }, spanGaps: false });
      cols.push(d.series[k]);
    });
    new uPlot({ width: el.clientWidth || 900, height: 320, series: series,
      axes: [{}, { label: "" }], legend: { live: false } }, cols, el);
  }

  function roundBars(target, source) {
    var rows = data(source), el = document.getElementById(target);
    var rounds = [], plants = [], metric = null;
    rows.forEach(function (r) {
      if (rounds.indexOf(r.round) < 0) rounds.push(r.round);
      if (plants.indexOf(r.plant_id) < 0) plants.push(r.plant_id);
      if (!metric) metric = Object.keys(r.metrics)[0];
    });
    var chart = echarts.init(el);
    chart.setOption({
      aria: { enabled: true, decal: { show: true } },
      legend: { data: plants }, tooltip: {}, xAxis: { type: "category", data: rounds.map(function (r) { return "round " + r; }) },
      yAxis: { type: "value", name: metric || "" },
      series: plants.map(function (p) {
        return { name: p, type: "bar", data: rounds.map(function (rd) {
          var hit = rows.filter(function (r) { return r.round === rd && r.plant_id === p; })[0];
          return hit && metric ? hit.metrics[metric] : null; }) };
      })
    });
  }

  function impactBars(target, source) {
    var rows = data(source), el = document.getElementById(target);
    var currency = null, months = [], avoided = {}, alarms = {};
    rows.forEach(function (r) {
      if (!r.currency) return;
      if (!currency) currency = r.currency;
      if (r.currency !== currency) return;
      if (months.indexOf(r.month) < 0) months.push(r.month);
      avoided[r.month] = (avoided[r.month] || 0) + r.cost_avoided;
      alarms[r.month] = (alarms[r.month] || 0) + r.false_alarm_cost;
    });
    months.sort();
    var chart = echarts.init(el);
    chart.setOption({
      aria: { enabled: true, decal: { show: true } }, tooltip: {},
      legend: { data: ["cost avoided", "cost of false alarms"] },
      xAxis: { type: "category", data: months }, yAxis: { type: "value", name: currency || "" },
      series: [
        { name: "cost avoided", type: "bar", data: months.map(function (m) { return avoided[m]; }) },
        { name: "cost of false alarms", type: "bar", data: months.map(function (m) { return alarms[m]; }) }
      ]
    });
  }

  window.Millwright = { timeSeries: timeSeries, roundBars: roundBars, impactBars: impactBars };
})();
