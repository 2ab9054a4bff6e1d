// A history chart (uPlot, vendored in vendor/ and loaded by index.html as
// the global `uPlot`). Raw readings draw one line; minute or hour buckets
// draw the average with a band from minimum to maximum. A required value
// draws as a dashed red line.

import { t, fmtNum, fmtTime } from "./i18n.js";

const BLUE = "#1f6fb2";
const BAND = "rgba(31,111,178,0.14)";
const RED = "#c62828";

/** Draws `hist` (GET …/history) into `box`; returns the uPlot (call `.destroy()`). */
export function chart(box, hist, { unit, threshold, from, to }) {
  const raw = hist.resolution === "raw";
  const xs = hist.points.map((p) => Date.parse(p.ts) / 1000);
  const data = [xs];
  const series = [{ label: t("building.readAt"), value: (u, v) => (v == null ? "—" : fmtTime(new Date(v * 1000), true)) }];
  const fmt = (v) => (v == null ? "—" : fmtNum(v, 3) + (unit ? " " + unit : ""));
  if (raw) {
    data.push(hist.points.map((p) => p.value));
    // Readings are reported on change: a value holds until the next one.
    series.push({ label: t("building.value"), stroke: BLUE, width: 1.5, value: (u, v) => fmt(v),
      paths: window.uPlot.paths.stepped({ align: 1 }) });
  } else {
    data.push(hist.points.map((p) => p.avg), hist.points.map((p) => p.min), hist.points.map((p) => p.max));
    series.push(
      { label: t("building.avg"), stroke: BLUE, width: 1.5, value: (u, v) => fmt(v) },
      { label: t("building.min"), stroke: "rgba(31,111,178,0.35)", width: 1, value: (u, v) => fmt(v) },
      { label: t("building.max"), stroke: "rgba(31,111,178,0.35)", width: 1, value: (u, v) => fmt(v) },
    );
  }
  const width = Math.max(280, box.clientWidth - 4);
  const opts = {
    width,
    height: 210,
    series,
    bands: raw ? [] : [{ series: [3, 2], fill: BAND }],
    scales: {
      x: { time: true, range: () => [from.getTime() / 1000, to.getTime() / 1000] },
      y: { range: (u, min, max) => yRange(min, max, threshold) },
    },
    axes: [
      { stroke: "#5b6675", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#dde2e8" },
        values: (u, splits, axis, space, incr) => splits.map((s) => axisTime(s, incr)) },
      { stroke: "#5b6675", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#dde2e8" }, size: 56,
        values: (u, vals) => vals.map((v) => fmtNum(v, 3)) },
    ],
    legend: { live: true },
    hooks: { draw: threshold == null ? [] : [(u) => drawThreshold(u, threshold)] },
    cursor: { drag: { x: true, y: false } },
    // Times on the axis and legend in China Standard Time, as everywhere else.
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Asia/Shanghai"),
  };
  const plot = new window.uPlot(opts, data, box);
  if (threshold != null) {
    const key = document.createElement("div");
    key.className = "threshold-key";
    key.textContent = t("building.threshold") + " " + fmt(threshold);
    box.append(key);
  }
  const resize = new ResizeObserver(() => {
    const w = Math.max(280, box.clientWidth - 4);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 210 });
  });
  resize.observe(box);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => { resize.disconnect(); destroy(); };
  return plot;
}

/** The required value as a dashed red line across the whole plot. */
function drawThreshold(u, value) {
  const y = u.valToPos(value, "y", true);
  const { left, width } = u.bbox;
  const c = u.ctx;
  c.save();
  c.strokeStyle = RED;
  c.lineWidth = window.devicePixelRatio || 1;
  c.setLineDash([6 * c.lineWidth, 4 * c.lineWidth]);
  c.beginPath();
  c.moveTo(left, y);
  c.lineTo(left + width, y);
  c.stroke();
  c.restore();
}

const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

/** An x-axis label: `HH:mm`, or `MM-DD` at midnight and for steps of a day or more. */
function axisTime(secs, incr) {
  const p = Object.fromEntries(parts.formatToParts(new Date(secs * 1000)).map((x) => [x.type, x.value]));
  const day = p.month + "-" + p.day;
  const hm = p.hour + ":" + p.minute;
  return incr >= 86400 || hm === "00:00" ? day : hm;
}

/** Some room above and below; the required value always in view. */
function yRange(min, max, threshold) {
  if (min == null || max == null) return [0, 1];
  if (threshold != null) { min = Math.min(min, threshold); max = Math.max(max, threshold); }
  const pad = (max - min) * 0.1 || Math.abs(max) * 0.1 || 1;
  return [min - pad, max + pad];
}
