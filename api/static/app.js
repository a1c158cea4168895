// The control room: the live board (alerts unacknowledged first, then tier, then age; filters, search, bulk
// acknowledge, assign, escalate, resolve with a finding), open work orders with the transitions the API allows
// and a staff picker, KPIs with units, thresholds and trend, a Level 1 sound and browser notification with a
// mute for the shift, a wall-screen (kiosk) mode, and the other views (views.js). Everything is rendered with
// textContent; residents' data is shown exactly as the API returns it (masked for roles without resident.pii).

import { ApiError, openStream, request } from "./api.js";
import { CODE_TEXT, KPI_DEFINITION_ZH, KPI_TEXT, LANG_KEY, ROLE_TEXT, TIMELINE_TEXT } from "./i18n.js";
import {
  $, TOKEN_KEY, actionText, alertTitle, alertWhere, api, can, clearMessage, condition, deviceNames, h, localTime, placeName, scopeQuery,
  showError, showInfo, staffName, staffPicker, state, stateText, t, tick, tn, whereText, whyText,
} from "./ui.js";
import { openDevice, showView, refreshView } from "./views.js";

const TERMINAL = new Set(["closed", "cancelled"]);
const PAGE = 100;
const MAX_PAGES = 5;
const MUTE_KEY = "steward.muteUntil";
const SHIFT_MS = 12 * 3600 * 1000;
const ACTION_FIELDS = {
  reassign: [["assignee", "staff", true]], reject: [["reason", "text", true]], verify: [["reason", "text", false]],
  return_visit: [["rating", "number", true], ["note", "text", false]], cancel: [["reason", "text", false]],
  dispatch: [["assignee", "staff", false]],
};
const SINCE = { last1h: 3600e3, last24h: 86400e3, last7d: 7 * 86400e3, last30d: 30 * 86400e3 };

// --- session ------------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  clearMessage();
  unlockSound();  // the click is the gesture browsers want before sound and the notification question
  askNotifications();
  const form = { username: $("username").value, password: $("password").value };
  try {
    const answer = await request("POST", "/auth/token", { form, lang: state.lang });
    state.token = answer.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("password").value = "";
    await enter();
  } catch (err) { showError(err); }
}

async function logout() {
  try { await api("POST", "/auth/logout"); } catch { /* the token is dropped either way */ }
  endSession(t("loggedOut"), true);
}

function endSession(text, info = false) {
  if (state.stream) state.stream.stop();
  clearInterval(state.kpiTimer);
  Object.assign(state, { token: null, me: null, stream: null, detailId: null, orderForm: null });
  state.alerts.clear();
  state.orders.clear();
  state.selected.clear();
  sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ["room", "who", "nav"]) $(id).hidden = true;
  $("login-view").hidden = false;
  if (info) showInfo(text); else showError(new ApiError(401, "not_authenticated", text, null));
  $("username").focus();
}
state.onSessionEnd = (text) => endSession(text);

async function loadDirectory() {
  const [staff, places] = await Promise.all([
    api("GET", "/staff").catch(() => []), api("GET", "/places").catch(() => []),
  ]);
  state.staff = new Map(staff.map((p) => [p.id, p]));
  state.places = new Map(places.map((p) => [p.id, p]));
}

function renderUser() {
  if (state.me) $("user").textContent = `${state.me.staff_name || state.me.username} · ${(ROLE_TEXT[state.lang] || ROLE_TEXT.en)[state.me.role] || state.me.role}`;
}

function renderLive() {
  const s = $("live").dataset.state;
  $("live").textContent = s ? "● " + t(s) : "";
}

async function enter() {
  state.me = await api("GET", "/auth/me");
  state.config = await request("GET", "/ui/config.json");
  await loadDirectory();
  $("login-view").hidden = true;
  for (const id of ["room", "who", "nav"]) $(id).hidden = false;
  renderUser();
  const select = $("community");
  select.replaceChildren(h("option", { value: "" }, t("all")),
    ...state.me.communities.map((c) => h("option", { value: c }, placeName(c))));
  select.value = state.community;
  document.querySelector('[data-view="dead"]').hidden = !can("dead_letters.read");
  api("GET", "/demo/phone?limit=1").then(() => { document.querySelector('[data-view="phone"]').hidden = false; }, () => {});
  renderFilters();
  // The stream opens first; the lists load once it is open, so no change falls between the two.
  state.stream = openStream(state.token, {
    onOpen: () => { reloadAll().catch(showError); },
    onMessage: onChange,
    onState: (s) => { $("live").dataset.state = s; renderLive(); },
    onEnd: () => endSession(t("sessionEnded")),
  });
  clearInterval(state.kpiTimer);
  state.kpiTimer = setInterval(() => { loadKpis().catch(() => {}); loadDirectory().catch(() => {}); }, 60000);
  applyKiosk();
  showView(state.view);
}

// --- data ---------------------------------------------------------------------------------------------

async function reloadAll() {
  await Promise.all([loadAlerts(), loadOrders(), loadKpis(), loadLevel1Waiting()]);
}

// Unacknowledged Level 1 alerts of the user's scope, whatever the board's filters show: a filter never
// silences the alarm. Kept current by the live stream (onChange).
const level1Waiting = new Set();
async function loadLevel1Waiting() {
  const page = await api("GET", "/alerts?tier=1&status=open&limit=200" + scopeQuery());
  level1Waiting.clear();
  for (const a of page.data) level1Waiting.add(a.id);
  renderHiddenLevel1();
}
function noteLevel1(alert) {
  if (alert.tier === 1 && alert.status === "open") level1Waiting.add(alert.id); else level1Waiting.delete(alert.id);
}

function alertQuery() {
  const f = state.filters;
  const q = [`sort=triage&limit=${PAGE}`];
  if (f.status === "active") q.push("status=open", "status=acknowledged");
  else if (f.status) q.push("status=" + f.status);
  if (f.tier) q.push("tier=" + f.tier);
  if (f.family) q.push("family=" + f.family);
  if (f.building) q.push("building=" + encodeURIComponent(f.building));
  if (f.since) q.push("from=" + encodeURIComponent(new Date(Date.now() - SINCE[f.since]).toISOString()));
  if (f.q.trim()) q.push("q=" + encodeURIComponent(f.q.trim()));
  return "/alerts?" + q.join("&") + scopeQuery();
}

async function loadAlerts() {
  const found = new Map();
  let cursor = null;
  let pages = 0;
  do {
    const page = await api("GET", alertQuery() + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    for (const a of page.data) found.set(a.id, a);
    cursor = page.next_cursor;
  } while (cursor && ++pages < MAX_PAGES);
  state.alerts = found;
  state.alertsTruncated = Boolean(cursor);
  for (const id of [...state.selected]) if (!found.has(id)) state.selected.delete(id);
  renderAlerts();
}

async function loadOrders() {
  if (!state.config.work_orders) { $("orders-heading").parentElement.hidden = true; return; }
  const page = await api("GET", `/work-orders?open_only=true&limit=${PAGE}` + scopeQuery());
  state.orders = new Map(page.data.map((o) => [o.id, o]));
  renderOrders();
}

function matchesFilters(a) {
  const f = state.filters;
  if (f.status === "active" && a.status === "resolved") return false;
  if (f.status && f.status !== "active" && a.status !== f.status) return false;
  if (f.tier && String(a.tier) !== f.tier) return false;
  if (f.building && a.building_id !== f.building) return false;
  return true;
}

async function onChange(kind, change) {
  try {
    if (state.community && change.community_id !== state.community) return;
    if (kind === "alert") {
      const id = Number(change.entity_id);
      const detail = await api("GET", "/alerts/" + id);
      const before = state.alerts.get(id);
      upsertAlert(detail.alert);
      // New, or raised to Level 1 (escalated, or reopened): announce it once.
      if (detail.alert.tier === 1 && detail.alert.status === "open" && (!before || before.tier !== 1 || before.status === "resolved")) {
        announceLevel1(detail.alert);
      }
      // Not under the hands of somebody filling a form in the detail: the card is updated, the detail waits.
      if (state.detailId === id && !detailDirty) renderDetail(detail);
    } else if (kind === "work_order") {
      const id = Number(change.entity_id);
      const detail = await api("GET", "/work-orders/" + id);
      upsertOrder(detail.order);
      scheduleKpis();
    }
    if (state.view !== "board") refreshView(state.view, kind);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) showError(err);
  }
}

let kpiSoon = null;
function scheduleKpis() {
  clearTimeout(kpiSoon);
  kpiSoon = setTimeout(() => loadKpis().catch(() => {}), 1000);
}

function upsertAlert(alert) {
  noteLevel1(alert);
  if (!matchesFilters(alert)) state.alerts.delete(alert.id); else state.alerts.set(alert.id, alert);
  renderAlerts();
}

function upsertOrder(order) {
  if (TERMINAL.has(order.state)) state.orders.delete(order.id); else state.orders.set(order.id, order);
  renderOrders();
}

// --- Level 1: sound and notification, muted for a shift on request ------------------------------------
// Browsers play sound and ask for notifications only after a gesture: the login click (or the first click
// on the page) unlocks the audio and asks once; a button asks again while notifications are not granted.
// An unacknowledged Level 1 on the board rings again every ALARM_REPEAT_MS until somebody owns it.

const ALARM_REPEAT_MS = 30_000;
let lastRing = 0;

function mutedUntil() { return Number(localStorage.getItem(MUTE_KEY) || 0); }

function notifications() { return "Notification" in window ? Notification.permission : "unsupported"; }

function renderSound() {
  const button = $("sound");
  const until = mutedUntil();
  const muted = until > Date.now();
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? `${t("muted")} ${new Date(until).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" })}` : t("muteShift");
  button.title = t("notify");
  const ask = $("notify");
  const permission = notifications();
  ask.hidden = permission === "granted" || permission === "unsupported";
  ask.textContent = permission === "denied" ? t("notifyBlocked") : t("enableNotify");
  ask.disabled = permission === "denied";
  ask.title = permission === "denied" ? t("notifyBlockedHelp") : t("notify");
}

function askNotifications() {
  if (notifications() !== "default") { renderSound(); return; }
  try {
    Promise.resolve(Notification.requestPermission()).then(renderSound, renderSound);
  } catch { renderSound(); }
}

function toggleMute() {
  if (mutedUntil() > Date.now()) localStorage.removeItem(MUTE_KEY);
  else localStorage.setItem(MUTE_KEY, String(Date.now() + SHIFT_MS));
  renderSound();
}

let audio = null;
function unlockSound() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
  } catch { /* no audio here */ }
}

function beep() {
  lastRing = Date.now();
  document.body.dataset.rings = String(Number(document.body.dataset.rings || 0) + 1);
  try {
    unlockSound();
    const now = audio.currentTime;
    for (let i = 0; i < 3; i++) {  // three short two-tone pulses: distinct from any UI click
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.setValueAtTime(i % 2 ? 660 : 880, now + i * 0.35);
      gain.gain.setValueAtTime(0.2, now + i * 0.35);
      gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.35 + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.35);
      osc.stop(now + i * 0.35 + 0.3);
    }
  } catch { /* no audio device: the notification and the red card remain */ }
}

function announceLevel1(alert) {
  document.body.dataset.lastLevel1 = String(alert.id);
  if (mutedUntil() > Date.now()) return;
  beep();
  if (notifications() === "granted") {
    const n = new Notification(`${t("newLevel1")}: ${alertTitle(alert)}`, {
      body: alertWhere(alert), tag: "steward-alert-" + alert.id, requireInteraction: true,
    });
    n.onclick = () => { window.focus(); openDetail(alert.id); };
  }
}

// Every second (from tick): ring again while a Level 1 waits for somebody, unless muted for the shift.
function alarmTick() {
  if (!state.me || mutedUntil() > Date.now()) return;
  const waiting = level1Waiting.size > 0;
  document.body.dataset.level1Waiting = String(waiting);
  if (waiting && Date.now() - lastRing >= ALARM_REPEAT_MS) beep();
}

// --- filters and bulk acknowledge ---------------------------------------------------------------------

function renderFilters() {
  const f = state.filters;
  const buildings = [...state.places.values()].filter((p) => p.kind === "building" && (!state.community || p.community_id === state.community));
  const select = (name, options) => h("select", { name, "aria-label": t(name === "q" ? "search" : name) },
    options.map(([value, label]) => h("option", { value, selected: f[name] === value }, label)));
  const form = $("filters");
  form.replaceChildren(
    select("tier", [["", t("anyTier")], ["1", t("tier1")], ["2", t("tier2")], ["3", t("tier3")]]),
    select("family", [["", t("anyFamily")], ...["elevator", "water", "access", "elderly"].map((x) => [x, t(x)])]),
    select("building", [["", t("anyBuilding")], ...buildings.map((b) => [b.id, b.name])]),
    select("status", [["active", t("activeStatus")], ["open", t("open")], ["acknowledged", t("acknowledged")],
      ["resolved", t("resolved")], ["", t("anyStatus")]]),
    select("since", [["", t("anyTime")], ...Object.keys(SINCE).map((k) => [k, t(k)])]),
    h("input", { name: "q", type: "search", value: f.q, placeholder: t("search"), "aria-label": t("search"), maxlength: 100 }),
    h("button", { type: "submit" }, t("apply")));
  form.onsubmit = (e) => {
    e.preventDefault();
    const data = new FormData(form);
    for (const key of Object.keys(f)) f[key] = String(data.get(key) ?? "");
    loadAlerts().catch(showError);
  };
  form.onchange = (e) => { if (e.target.tagName === "SELECT") form.requestSubmit(); };
}

function renderBulk(alerts) {
  const open = alerts.filter((a) => a.status === "open");
  const box = $("bulk");
  if (!can("alert.act") || open.length === 0) { box.replaceChildren(); return; }
  const all = open.every((a) => state.selected.has(a.id));
  box.replaceChildren(
    h("label", {}, h("input", { type: "checkbox", checked: all && state.selected.size > 0, onchange: (e) => {
      for (const a of open) if (e.target.checked) state.selected.add(a.id); else state.selected.delete(a.id);
      renderAlerts();
    } }), " ", t("selectAll")),
    h("button", { type: "button", class: "primary", disabled: state.selected.size === 0, onclick: bulkAcknowledge },
      `${t("ackSelected")} (${state.selected.size})`));
}

async function bulkAcknowledge() {
  clearMessage();
  try {
    const answer = await api("POST", "/alerts/acknowledge", { json: { ids: [...state.selected] } });
    state.selected.clear();
    const failed = answer.results.filter((r) => !r.ok);
    showInfo(tn("bulkDone", answer.acknowledged) + (failed.length ? " · " + tn("bulkFailed", failed.length) : ""));
    await loadAlerts();
  } catch (err) { showError(err); }
}

// --- alerts -------------------------------------------------------------------------------------------

// Unacknowledged first, then the most severe tier, then the longest waiting (the API's sort=triage).
function triage(a, b) {
  const rank = { open: 0, acknowledged: 1, resolved: 2 };
  return rank[a.status] - rank[b.status] || a.tier - b.tier || Date.parse(a.opened_at) - Date.parse(b.opened_at) || a.id - b.id;
}

function renderAlerts() {
  const alerts = [...state.alerts.values()].sort(triage);
  $("alert-count").textContent = `(${alerts.length}${state.alertsTruncated ? "+ " + t("more") : ""})`;
  $("alerts-empty").hidden = alerts.length > 0;
  $("alert-list").replaceChildren(...alerts.map(alertCard));
  renderBulk(alerts);
  renderHiddenLevel1();
  tick();
}

// A waiting Level 1 the filters hide is said above the list, with one click to show everything.
function renderHiddenLevel1() {
  const hidden = [...level1Waiting].filter((id) => !state.alerts.has(id)).length;
  const button = $("hidden-level1");
  button.hidden = hidden === 0;
  button.textContent = tn("level1Hidden", hidden);
}

function showEverything() {
  Object.assign(state.filters, { tier: "", family: "", building: "", status: "active", since: "", q: "" });
  renderFilters();
  loadAlerts().catch(showError);
}

function alertCard(a) {
  const tierLabel = t("tier" + a.tier);
  const actions = [];
  if (can("alert.act") && a.status === "open") actions.push(h("button", { type: "button", class: "primary", onclick: () => act(a.id, "acknowledge") }, t("acknowledge")));
  actions.push(h("button", { type: "button", onclick: () => openDetail(a.id), "aria-controls": "detail" }, t("details")));
  const select = can("alert.act") && a.status === "open"
    ? h("input", { type: "checkbox", class: "pick", "aria-label": `${t("selected")} #${a.id}`, checked: state.selected.has(a.id),
      onchange: (e) => { if (e.target.checked) state.selected.add(a.id); else state.selected.delete(a.id); renderBulk([...state.alerts.values()]); } })
    : h("span", { class: "pick" });
  return h("li", { class: `alert tier-${a.tier} status-${a.status}` + (state.detailId === a.id ? " selected" : ""), dataset: { alertId: a.id, tier: a.tier, status: a.status } },
    select,
    h("div", { class: "tier-badge", "aria-label": tierLabel }, h("span", {}, "L" + a.tier), h("small", {}, tierLabel.replace(/^L\d |^\S+ /, ""))),
    h("div", { class: "alert-main" },
      h("h3", { class: "alert-title" }, alertTitle(a), state.lang === "en" && a.title !== alertTitle(a) ? h("small", { class: "sub" }, " — " + a.title) : ""),
      h("p", { class: "meta" },
        h("span", { class: "where" }, alertWhere(a)), " · ",
        h("span", { title: a.device_ids.join(", ") }, `${t("devices")}: ${deviceNames(a)}`)),
      h("p", { class: "meta" },
        h("span", { class: `status status-${a.status}` }, t(a.status)),
        a.acknowledged_by ? h("span", {}, ` ${t("acknowledgedBy")} ${staffName(a.acknowledged_by)}`) : "",
        a.assignee ? h("span", {}, ` · ${t("assignee")} ${staffName(a.assignee)}`) : "",
        a.resolution ? h("span", {}, ` · ${t("resolvedAs")}: ${t(a.resolution)}`) : "",
        " · ", h("span", {}, `${t("age")} `), h("time", { datetime: a.opened_at, title: localTime(a.opened_at), dataset: { since: a.opened_at } }),
        a.ack_due_at && a.status === "open" ? [" · ", h("span", { class: "sla", dataset: { due: a.ack_due_at, dueLabel: "ackDue", overdueLabel: "ackOverdue" } })] : "",
        a.work_order ? [" · ", h("span", { class: "tag" }, t("workOrder"))] : "")),
    h("div", { class: "actions" }, actions));
}

async function act(id, action, body) {
  clearMessage();
  try {
    const alert = await api("POST", `/alerts/${id}/${action}`, body === undefined ? {} : { json: body });
    upsertAlert(alert);
    if (state.detailId === id) await openDetail(id);
    return true;
  } catch (err) { showError(err); return false; }
}

export async function openDetail(id, { stay = false } = {}) {
  clearMessage();
  try {
    if (state.view !== "board" && !stay) showView("board");
    state.detailId = id;
    renderDetail(await api("GET", "/alerts/" + id));
    renderAlerts();
  } catch (err) { showError(err); }
}

function timelineText(e) {
  const kind = (TIMELINE_TEXT[state.lang] || TIMELINE_TEXT.en)[e.kind] || e.kind;
  const extra = [];
  if (e.detail && e.detail.assignee) extra.push(`→ ${staffName(e.detail.assignee)}`);
  if (e.detail && e.detail.resolution) extra.push(t(e.detail.resolution));
  // A system's reason is codes read in the page's language; a person's reason is their own words.
  const why = e.detail && (whyText(e.detail.why) || whyText(e.detail.team_why));
  if (why) extra.push(`${t("reason")}: ${why}`);
  else if (e.detail && e.detail.reason) extra.push(`${t("reason")}: ${e.detail.reason}`);
  if (e.detail && e.detail.note) extra.push(`${t("note")}: ${e.detail.note}`);
  if (e.detail && e.detail.text) extra.push(e.detail.text);  // a field note's own words
  if (e.detail && e.detail.repeat_of) extra.push(`#${e.detail.repeat_of}`);
  if (e.kind === "tier_raised" && e.detail) extra.push(`L${e.detail.from ?? "?"} → L${e.detail.to}`);
  if (e.kind === "escalated" && e.tier) extra.push(t("tier" + e.tier));
  const machines = { detector: ["检测器", "detector"], system: ["系统", "system"] };
  const actor = machines[e.actor] ? machines[e.actor][state.lang === "zh" ? 0 : 1] : staffName(e.actor);
  return `${localTime(e.at)} · ${kind} · ${actor}${extra.length ? " · " + extra.join(" · ") : ""}`;
}

let detailDirty = false;

function renderDetail(detail) {
  detailDirty = false;
  const a = detail.alert;
  const box = $("detail");
  box.hidden = false;
  box.className = `detail card tier-${a.tier}`;
  $("detail-heading").textContent = `#${a.id} ${alertTitle(a)}`;
  const forms = [];
  if (can("alert.act") && a.status !== "resolved") {
    const comment = h("textarea", { name: "body", rows: 2, maxlength: 4000, "aria-label": t("comment"), required: true });
    forms.push(h("form", { class: "inline", onsubmit: async (e) => { e.preventDefault(); await postComment(a.id, comment.value); } },
      comment, h("button", { type: "submit" }, t("comment"))));
    const assignee = staffPicker("assignee", { communityId: a.community_id, required: true });
    forms.push(h("form", { class: "inline", "aria-label": t("assign"), onsubmit: async (e) => { e.preventDefault(); await act(a.id, "assign", { assignee: assignee.value }); } },
      h("span", {}, t("assignTo")), assignee, h("button", { type: "submit" }, t("assign"))));
    if (a.tier > 1) {
      const tier = h("select", { name: "tier", "aria-label": t("toTier") },
        [2, 1].filter((x) => x < a.tier).map((x) => h("option", { value: x }, t("tier" + x))));
      const why = h("input", { name: "reason", maxlength: 4000, placeholder: t("reason"), "aria-label": t("reason") });
      forms.push(h("form", { class: "inline", "aria-label": t("escalate"), onsubmit: async (e) => { e.preventDefault(); await act(a.id, "escalate", { tier: Number(tier.value), reason: why.value || null }); } },
        h("span", {}, t("toTier")), tier, why, h("button", { type: "submit" }, t("escalate"))));
    }
    const resolution = h("select", { name: "resolution", "aria-label": t("resolution"), required: a.tier === 1 },
      h("option", { value: "" }, t("resolution")),
      ["confirmed", "false_alarm", "duplicate"].map((r) => h("option", { value: r }, t(r))));
    const reason = h("input", { name: "reason", maxlength: 4000, required: a.tier === 1, "aria-label": t("reasonRequired"),
      placeholder: a.tier === 1 ? t("reasonRequired") : t("reason") });
    const duplicateOf = h("input", { name: "duplicate_of", type: "number", min: 1, placeholder: t("duplicateOf"), "aria-label": t("duplicateOf"), hidden: true });
    resolution.onchange = () => { duplicateOf.hidden = resolution.value !== "duplicate"; };
    forms.push(h("form", { class: "inline resolve", "aria-label": t("resolve"), onsubmit: async (e) => {
      e.preventDefault();
      const body = { resolution: resolution.value || null, reason: reason.value || null };
      if (resolution.value === "duplicate") body.duplicate_of = Number(duplicateOf.value) || null;
      await act(a.id, "resolve", body);
    } }, resolution, reason, duplicateOf, h("button", { type: "submit" }, t("resolve"))));
  }
  $("detail-body").oninput = () => { detailDirty = true; };
  $("detail-body").onchange = () => { detailDirty = true; };
  $("detail-body").replaceChildren(
    h("p", { class: "meta" }, `${t(a.status)} · ${t("opened")} ${localTime(a.opened_at)} · ${alertWhere(a)}`),
    h("p", { class: "meta devices" }, `${t("devices")}: `, (a.devices && a.devices.length ? a.devices : a.device_ids.map((id) => ({ device_id: id })))
      .map((d) => h("button", { type: "button", class: "link", dataset: { deviceId: d.device_id }, title: `${d.device_id} · ${t("showDevice")}`,
        onclick: () => openDevice(d.device_id) }, d.name || d.device_id))),
    a.resolution ? h("p", { class: "meta" }, `${t("resolvedAs")}: ${t(a.resolution)}${a.resolution_reason ? " · " + a.resolution_reason : ""}`) : "",
    detail.residents.length ? h("div", {}, h("h3", {}, t("residents")), h("ul", { class: "residents" }, detail.residents.map(residentItem))) : "",
    ...forms,
    h("h3", {}, t("comments")),
    detail.comments.length ? h("ul", { class: "comments" }, detail.comments.map((c) => h("li", {}, h("b", {}, staffName(c.actor)), ` ${localTime(c.at)}: `, c.body)))
      : h("p", { class: "empty" }, t("noComments")),
    h("h3", {}, t("timeline")),
    h("ol", { class: "timeline" }, detail.timeline.map((e) => h("li", {}, timelineText(e)))),
    ...pagesOf(detail),
    h("button", { type: "button", onclick: closeDetail }, t("close")));
}

// Who on-call paged about the alert, step by step, by which channel, and whether it arrived; its work orders.
function pagesOf(detail) {
  const words = CODE_TEXT[state.lang] || CODE_TEXT.en;
  const orders = detail.work_order_ids || [];
  return [
    orders.length ? h("p", { class: "meta work-orders" }, `${words.work_orders}: `,
      orders.map((id) => h("button", { type: "button", class: "link", dataset: { orderId: id }, onclick: () => openOrder(id) }, `#${id}`))) : "",
    h("h3", {}, words.pages),
    (detail.pages || []).length ? h("ol", { class: "timeline pages" }, detail.pages.map((p) => h("li", { class: `page-${p.status}` },
      [localTime(p.at), words.page[p.kind].replace("{n}", p.step), staffName(p.staff_id), words.channel[p.channel] || p.channel,
        `${words.pageStatus[p.status]}${p.sent_at ? " " + localTime(p.sent_at) : ""}`].join(" · "))))
      : h("p", { class: "empty" }, words.noPages),
  ];
}

// As the API returns it: masked values stay masked, nothing is recomputed here.
function residentItem(r) {
  return h("li", { class: r.masked ? "masked" : "" },
    h("b", {}, r.full_name), r.unit_id ? ` (${placeName(r.building_id)} ${placeName(r.unit_id)})` : "",
    r.phone ? ` · ${t("phone")} ${r.phone}` : "",
    r.emergency_contact_name || r.emergency_contact_phone ? ` · ${t("emergency")} ${r.emergency_contact_name} ${r.emergency_contact_phone}` : "",
    r.care_notes ? h("div", { class: "care" }, `${t("careNotes")}: ${r.care_notes}`) : "",
    r.masked ? h("span", { class: "tag" }, t("masked")) : "");
}

function closeDetail() {
  state.detailId = null;
  $("detail").hidden = true;
  renderAlerts();
}

async function postComment(id, body) {
  clearMessage();
  try {
    await api("POST", `/alerts/${id}/comments`, { json: { body } });
    await openDetail(id);
  } catch (err) { showError(err); }
}

// --- work orders --------------------------------------------------------------------------------------

// A field step (accept, arrive, complete) is the assignee's: a person who cannot manage orders sees it only on
// their own (the API refuses it on somebody else's, which stays theirs until reassigned).
const FIELD_STEPS = new Set(["accept", "arrive", "complete"]);
function actionsFor(order) {
  // Field steps are the assignee's own; a login linked to nobody takes none (the API answers not_linked).
  const mine = Boolean(state.me && state.me.staff_id) && (!order.assignee || order.assignee === state.me.staff_id);
  return (state.config.transitions[order.state] || []).filter((tr) => tr.needs_any.some(can)
    && (mine || !FIELD_STEPS.has(tr.action) || can("workorder.manage")));
}

function renderOrders() {
  const orders = [...state.orders.values()].sort((a, b) => (a.tier ?? 9) - (b.tier ?? 9) || Date.parse(a.created_at) - Date.parse(b.created_at));
  $("order-count").textContent = `(${orders.length})`;
  $("orders-empty").hidden = orders.length > 0;
  $("order-list").replaceChildren(...orders.map(orderItem));
  tick();
}

function orderItem(o) {
  const due = o.state === "created" || o.state === "dispatched" ? o.ack_due_at : (o.state === "accepted" ? o.respond_due_at : o.complete_due_at);
  let controls;
  if (state.orderForm && state.orderForm.id === o.id) controls = orderForm(o, state.orderForm.action);
  else controls = h("div", { class: "actions" }, actionsFor(o).map((tr) => h("button", {
    type: "button", onclick: () => (ACTION_FIELDS[tr.action] ? (state.orderForm = { id: o.id, action: tr.action }, renderOrders()) : orderAction(o.id, tr.action, {})),
  }, actionText(tr.action))), h("button", { type: "button", onclick: () => openOrder(o.id) }, t("details")));
  return h("li", { class: "order" + (o.tier ? ` tier-${o.tier}` : ""), dataset: { orderId: o.id, state: o.state } },
    h("div", { class: "order-head" }, h("b", {}, `#${o.id} `), o.condition ? condition(o.condition) : o.title),
    h("p", { class: "meta" },
      h("span", { class: "state" }, stateText(o.state)),
      o.tier ? ` · L${o.tier}` : "", ` · ${whereText(o.community_id, o.building_id)}`,
      ` · ${t("assignee")}: ${staffName(o.assignee)}`,
      due ? [" · ", h("span", { class: "sla", dataset: { due } })] : ""),
    controls);
}

function orderForm(o, action) {
  const inputs = ACTION_FIELDS[action].map(([name, type, required]) => {
    if (type === "staff") return staffPicker(name, { communityId: o.community_id, required });
    const attrs = { name, type, required, "aria-label": t(name), placeholder: t(name) + (required ? " *" : "") };
    if (type === "number") Object.assign(attrs, { min: 1, max: 5, step: 1 });
    return h("input", attrs);
  });
  return h("form", {
    class: "inline", onsubmit: (e) => {
      e.preventDefault();
      const body = {};
      for (const input of inputs) if (input.value !== "") body[input.name] = input.type === "number" ? Number(input.value) : input.value;
      orderAction(o.id, action, body);
    },
  }, inputs, h("button", { type: "submit", class: "primary" }, actionText(action)),
  h("button", { type: "button", onclick: () => { state.orderForm = null; renderOrders(); } }, t("cancelForm")));
}

// A work order's history: every step with who took it and why, in the detail panel.
export async function openOrder(id) {
  clearMessage();
  try {
    const detail = await api("GET", "/work-orders/" + id);
    const o = detail.order;
    state.detailId = null;
    const box = $("detail");
    box.hidden = false;
    box.className = "detail card" + (o.tier ? ` tier-${o.tier}` : "");
    $("detail-heading").textContent = `${t("workOrder")} #${o.id} ${o.condition ? condition(o.condition) : o.title}`;
    $("detail-body").replaceChildren(
      h("p", { class: "meta" }, `${stateText(o.state)} · ${whereText(o.community_id, o.building_id)} · ${t("assignee")}: ${staffName(o.assignee)}`),
      o.incident_id ? h("button", { type: "button", class: "link", onclick: () => openDetail(o.incident_id) }, `#${o.incident_id}`) : "",
      can("workorder.work") && !TERMINAL.has(o.state) ? noteForm(o.id) : "",
      h("h3", {}, t("timeline")),
      h("ol", { class: "timeline order-timeline" }, detail.timeline.map((e) => h("li", {}, timelineText(e)))),
      h("button", { type: "button", onclick: closeDetail }, t("close")));
  } catch (err) { showError(err); }
}

// 跟进: a progress note from whoever works the order, on its timeline.
function noteForm(id) {
  const text = h("textarea", { name: "text", rows: 2, maxlength: 4000, required: true, "aria-label": t("progressNote"),
    placeholder: t("progressNote") });
  return h("form", { class: "inline", "aria-label": t("progressNote"), onsubmit: async (e) => {
    e.preventDefault();
    clearMessage();
    try {
      await api("POST", `/work-orders/${id}/notes`, { json: { text: text.value } });
      await openOrder(id);
    } catch (err) { showError(err); }
  } }, text, h("button", { type: "submit" }, t("addNote")));
}

async function orderAction(id, action, body) {
  clearMessage();
  try {
    const order = await api("POST", `/work-orders/${id}/actions`, { json: { action, ...body } });
    state.orderForm = null;
    upsertOrder(order);
  } catch (err) { showError(err); }
}

// --- KPIs: names and units in the page's language, the threshold, and the trend over the previous period --

export function kpiValue(name, k) {
  if (k.value === null) return t("noSample");
  const v = k.value;
  if (k.unit === "s") return v >= 3600 ? `${(v / 3600).toFixed(1)} ${state.lang === "zh" ? "小时" : "h"}` : `${Math.round(v / 60)} ${state.lang === "zh" ? "分钟" : "min"}`;
  if (k.unit === "ratio") return `${Math.round(v * 1000) / 10} %`;
  if (k.unit === "rating") return `${v.toFixed(2)} / 5`;
  if (k.unit === "orders") return `${Math.round(v)} ${state.lang === "zh" ? "单" : (Math.round(v) === 1 ? "order" : "orders")}`;
  if (name === "alerts_per_1000_devices") return `${Math.round(v * 10) / 10} ${state.lang === "zh" ? "条/千台" : "per 1,000"}`;
  return `${Math.round(v * 10) / 10}`;
}

async function loadKpis() {
  const list = $("kpi-list");
  const community = state.community || (state.me && state.me.communities[0]);
  if (!state.config.work_orders || !community) { list.replaceChildren(); return; }
  // The server's clock decides the period (its default: the last 30 days), not this PC's, which may be off.
  const report = await api("GET", `/kpis?community=${encodeURIComponent(community)}`);
  state.serverSkewMs = Date.parse(report.now) - Date.now() || 0;  // the charts' periods end at the server's now too
  const iso = (ms) => encodeURIComponent(new Date(ms).toISOString());
  const start = Date.parse(report.start);
  const before = await api("GET", `/kpis?community=${encodeURIComponent(community)}&from=${iso(start - 30 * 86400e3)}&to=${iso(start)}`).catch(() => null);
  const names = KPI_TEXT[state.lang] || KPI_TEXT.en;
  list.replaceChildren(h("li", { class: "kpi kpi-scope" }, h("span", { class: "kpi-name" }, t("last30")), h("span", { class: "kpi-value" }, placeName(report.community_id))),
    ...Object.entries(report.kpis).map(([name, k]) => {
      const prev = before && before.kpis[name] ? before.kpis[name].value : null;
      let trend = "";
      if (k.value !== null && prev !== null) trend = k.value > prev ? "▲" : (k.value < prev ? "▼" : "＝");
      // Up is worse for a KPI that warns above its threshold (response time, overdue, false alarms), better otherwise.
      const worse = (trend === "▲" && k.warn_when === "above") || (trend === "▼" && k.warn_when !== "above");
      const better = trend && trend !== "＝" && !worse;
      const trendTitle = (trend === "▲" ? t("trendUp") : (trend === "▼" ? t("trendDown") : (trend ? t("trendFlat") : "")))
        + (worse ? ` (${t("trendWorse")})` : (better ? ` (${t("trendBetter")})` : ""));
      const threshold = kpiValue(name, { ...k, value: k.threshold });
      const definition = state.lang === "zh" ? (KPI_DEFINITION_ZH[name] || k.definition) : k.definition;
      return h("li", { class: "kpi" + (k.warning ? " warn" : ""), dataset: { kpi: name }, title: definition },
        h("span", { class: "kpi-name" }, names[name] || name),
        h("span", { class: "kpi-value" }, kpiValue(name, k), trend ? h("span", { class: "trend" + (worse ? " worse" : (better ? " better" : "")), title: trendTitle, "aria-label": trendTitle }, " " + trend) : ""),
        h("span", { class: "kpi-threshold" }, `${t("threshold")} ${k.warn_when === "above" ? "≤" : "≥"} ${threshold}`));
    }));
}

// --- kiosk, language, start ---------------------------------------------------------------------------

function applyKiosk() {
  document.body.classList.toggle("kiosk", state.kiosk);
  $("kiosk").textContent = state.kiosk ? t("exitKiosk") : t("kiosk");
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang").textContent = state.lang === "zh" ? "English" : "中文";
  document.title = t("app");
  renderSound();
  applyKiosk();
  renderLive();  // the live marker and the role follow the language too
  if (state.me) {
    renderUser();
    $("community").options[0].textContent = t("all");
    renderFilters();
    renderAlerts();
    renderOrders();
    loadKpis().catch(() => {});
    if (state.detailId !== null) openDetail(state.detailId, { stay: true });  // redrawn where the user is
    if (state.view !== "board") showView(state.view);
  }
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("sound").addEventListener("click", toggleMute);
  $("notify").addEventListener("click", askNotifications);
  $("hidden-level1").addEventListener("click", showEverything);
  document.addEventListener("pointerdown", unlockSound, { once: true });  // a session restored without a login click
  $("kiosk").addEventListener("click", () => {
    state.kiosk = !state.kiosk;
    const url = new URL(location.href);
    if (state.kiosk) url.searchParams.set("kiosk", "1"); else url.searchParams.delete("kiosk");
    history.replaceState(null, "", url);
    applyKiosk();
  });
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "zh" : "en";
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
  });
  $("community").addEventListener("change", (e) => {
    state.community = e.target.value;
    state.filters.building = "";
    closeDetail();
    renderFilters();
    reloadAll().catch(showError);
    if (state.view !== "board") showView(state.view);
  });
  document.addEventListener("steward:open-alert", (e) => openDetail(e.detail));
  document.addEventListener("steward:open-order", (e) => { showView("board"); openOrder(e.detail); });
  for (const button of document.querySelectorAll("[data-view]")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  applyLanguage();
  setInterval(() => { tick(); alarmTick(); }, 1000);
  if (state.token) {
    try { await enter(); return; } catch { sessionStorage.removeItem(TOKEN_KEY); state.token = null; }
  }
  $("login-view").hidden = false;
}

start();
