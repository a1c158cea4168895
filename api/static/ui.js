// Shared by the page's modules: the one state object, DOM building (textContent only, never innerHTML),
// translations, names of people and places, times, messages and the API call with the session's token.

import { ApiError, request } from "./api.js";
import { ACTION_TEXT, STATE_TEXT, TEAM_TEXT, TEXT, conditionName, initialLanguage } from "./i18n.js";

export const TOKEN_KEY = "steward.token";

export const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  lang: initialLanguage(),
  me: null, config: { work_orders: false, transitions: {} }, community: "", view: "board",
  alerts: new Map(), orders: new Map(), alertsTruncated: false, detailId: null, stream: null, kpiTimer: null,
  orderForm: null, staff: new Map(), places: new Map(), selected: new Set(),
  filters: { tier: "", family: "", building: "", status: "active", since: "", q: "" },
  kiosk: new URLSearchParams(location.search).has("kiosk"), onSessionEnd: null,
};

export const $ = (id) => document.getElementById(id);
export const t = (key) => TEXT[state.lang][key] ?? TEXT.en[key] ?? key;
export const tn = (key, n) => t(key).replace("{n}", String(n));
export const actionText = (action) => (ACTION_TEXT[state.lang] || ACTION_TEXT.en)[action] || action;
export const stateText = (s) => (STATE_TEXT[state.lang] || STATE_TEXT.en)[s] || s.replaceAll("_", " ");
export const condition = (c) => conditionName(state.lang, c, state.config.conditions);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function can(permission) { return Boolean(state.me && state.me.permissions.includes(permission)); }

// --- names, not ids ----------------------------------------------------------------------------------

export function staffName(id) {
  if (!id) return "—";
  const person = state.staff.get(id);
  return person ? person.name : id;
}

export function placeName(id) {
  if (!id) return "";
  const place = state.places.get(id);
  return place ? place.name : id;
}

export function whereText(communityId, buildingId, unitId) {
  return [placeName(communityId), placeName(buildingId), unitId ? placeName(unitId) : null].filter(Boolean).join(" · ");
}

export function alertTitle(a) { return condition(a.condition); }

// An alert's place down to the unit (a resident's SOS is somebody's home), and its devices by name.
export function alertWhere(a) {
  const unit = (a.devices || []).map((d) => d.unit_id).find(Boolean);
  return whereText(a.community_id, a.building_id, unit);
}
export function deviceNames(a) {
  const devices = a.devices && a.devices.length ? a.devices : a.device_ids.map((id) => ({ device_id: id }));
  return devices.map((d) => d.name || d.device_id).join(", ") || "—";
}

// Why a work order went to whom: codes with parameters from the server (workorders/why.py, served in
// /ui/config.json), read in the page's language with names of people, places, teams and conditions.
const FAMILIES = ["elevator", "water", "access", "elderly"];
export function whyText(parts) {
  const table = state.config.dispatch_reasons;
  if (!table || !Array.isArray(parts)) return null;
  const locale = state.lang === "zh" ? "zh-CN" : "en";
  const templates = table.templates[locale] || table.templates.en;
  const j = table.joiners[locale] || table.joiners.en;
  const named = (kind, v) => {
    if (kind === "staff" || kind === "actor") return staffName(v);
    if (kind === "building") return placeName(v);
    if (kind === "team") return (TEAM_TEXT[state.lang] || TEAM_TEXT.en)[v] || v;
    if (kind === "family") return t(v);
    if (kind === "condition") return condition(v);
    if (kind === "skills") return (v || []).map((s) => (FAMILIES.includes(s) ? t(s) : condition(s))).join(j.list);
    return String(v ?? "");
  };
  const texts = parts.map((p) => (templates[p.code] || table.templates.en[p.code] || p.code)
    .replace(/\{(\w+)\}/g, (_, k) => named(k, (p.params || {})[k])));
  const at = parts.findIndex((p) => p.code === "chosen");
  if (at < 0) return texts.join(j.part);
  const notes = texts.slice(at + 1);
  return texts.slice(0, at + 1).join(j.part) + (notes.length ? j.person + notes.join(j.note) : "");
}

// --- time ---------------------------------------------------------------------------------------------

export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const u = state.lang === "zh" ? { d: "天", h: "小时", m: "分", s: "秒" } : { d: "d", h: "h", m: "m", s: "s" };
  if (d > 0) return `${d}${u.d} ${hh}${u.h}`;
  if (hh > 0) return `${hh}${u.h} ${String(mm).padStart(2, "0")}${u.m}`;
  return `${mm}${u.m} ${String(ss).padStart(2, "0")}${u.s}`;
}

export function localTime(iso) {
  return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB") : "—";
}

export function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = duration(now - Date.parse(el.dataset.since));
  for (const el of document.querySelectorAll("[data-due]")) {
    const left = Date.parse(el.dataset.due) - now;
    el.textContent = (left >= 0 ? t(el.dataset.dueLabel || "due") + " " : t(el.dataset.overdueLabel || "overdue") + " ") + duration(Math.abs(left));
    el.classList.toggle("late", left < 0);
  }
}

// --- messages and the API -----------------------------------------------------------------------------

export function showError(err) {
  const box = $("message");
  box.className = "message error";
  if (err instanceof ApiError) {
    // The API answers in the page's language; a server that cannot be reached (or a proxy's page) is said here.
    const message = err.code === "network" ? t("unreachable") : (err.code.startsWith("http_") ? `${t("httpError")} ${err.status}` : err.message);
    box.replaceChildren(h("strong", {}, err.code), " ", message, err.field ? h("span", { class: "field" }, " (" + err.field + ")") : "");
  } else {
    box.textContent = String(err && err.message ? err.message : err);
  }
  box.hidden = false;
}

export function showInfo(text) {
  const box = $("message");
  box.className = "message info";
  box.textContent = text;
  box.hidden = false;
}

export function clearMessage() { $("message").hidden = true; }

export async function api(method, path, opts = {}) {
  try {
    return await request(method, path, { token: state.token, lang: state.lang, ...opts });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && state.token && state.onSessionEnd) state.onSessionEnd(t("sessionEnded"));
    throw err;
  }
}

export function scopeQuery() { return state.community ? "&community=" + encodeURIComponent(state.community) : ""; }

// A staff picker: who is on duty first, then by load; each option says both.
export function staffPicker(name, { communityId = null, required = false } = {}) {
  const people = [...state.staff.values()].filter((p) => p.active && (!communityId || p.community_id === communityId));
  people.sort((a, b) => (b.on_duty.length > 0) - (a.on_duty.length > 0) || a.open_orders - b.open_orders || a.name.localeCompare(b.name));
  return h("select", { name, required, "aria-label": t("pickStaff") },
    h("option", { value: "" }, t("pickStaff")),
    people.map((p) => h("option", { value: p.id },
      `${p.name} · ${p.team_name || "—"} · ${p.on_duty.length ? "● " + t("onDuty") : t("offDuty")} · ${t("load")} ${p.open_orders}`)));
}

// --- a small SVG line chart (no charting library: one series, min/max band, axes with local times) ----

export function lineChart(points, { width = 640, height = 220, label = "" } = {}) {
  const NS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  const usable = points.filter((p) => p.avg !== null);
  if (usable.length === 0) return svg;
  const pad = { l: 48, r: 10, t: 10, b: 24 };
  const xs = usable.map((p) => Date.parse(p.bucket));
  const lo = Math.min(...usable.map((p) => p.min ?? p.avg)), hi = Math.max(...usable.map((p) => p.max ?? p.avg));
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const span = hi - lo || 1;
  const X = (v) => pad.l + ((v - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const Y = (v) => height - pad.b - ((v - lo) / span) * (height - pad.t - pad.b);
  const band = usable.map((p) => `${X(Date.parse(p.bucket))},${Y(p.max ?? p.avg)}`).concat(
    [...usable].reverse().map((p) => `${X(Date.parse(p.bucket))},${Y(p.min ?? p.avg)}`));
  svg.append(el("polygon", { points: band.join(" "), class: "band" }));
  svg.append(el("polyline", { points: usable.map((p) => `${X(Date.parse(p.bucket))},${Y(p.avg)}`).join(" "), class: "line" }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(el("text", { x: pad.l - 4, y: Y(v) + 4, class: "axis", "text-anchor": "end" }, String(Math.round(v * 100) / 100)));
  }
  for (const v of [x0, x1]) {
    svg.append(el("text", { x: X(v), y: height - 6, class: "axis", "text-anchor": v === x0 ? "start" : "end" },
      new Date(v).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })));
  }
  return svg;
}
