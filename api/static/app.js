// The control room: live open alerts by tier, alert actions, open work orders with the transitions the
// API allows, and the KPI strip. Everything is rendered with textContent (never innerHTML), and residents'
// data is shown exactly as the API returns it: the API masks it for roles without resident.pii.

import { ApiError, openStream, request } from "./api.js";

const TOKEN_KEY = "steward.token";
const LANG_KEY = "steward.lang";
const TERMINAL = new Set(["closed", "cancelled"]);
const PAGE = 100;
const MAX_PAGES = 5;

const TEXT = {
  en: {
    app: "Steward control room", skip: "Skip to alerts", login: "Log in", logout: "Log out", username: "Username",
    password: "Password", community: "Community", all: "All", alerts: "Open alerts", orders: "Open work orders",
    noAlerts: "No open alerts.", noOrders: "No open work orders.", kpis: "KPIs", acknowledge: "Acknowledge",
    resolve: "Resolve", details: "Details", comment: "Add comment", resolveNote: "Resolve with note",
    note: "Note", close: "Close", opened: "opened", age: "age", ackDue: "ack due in", ackOverdue: "ack overdue by",
    acknowledgedBy: "acknowledged by", building: "building", devices: "devices", condition: "condition",
    timeline: "Timeline", comments: "Comments", residents: "Residents", masked: "masked for your role",
    noComments: "No comments yet.", live: "live", connecting: "connecting…", reconnecting: "reconnecting…",
    stopped: "stream stopped", tier1: "L1 life safety", tier2: "L2 urgent", tier3: "L3 routine",
    open: "open", acknowledged: "acknowledged", resolved: "resolved", assignee: "assignee", rating: "rating (1-5)",
    reason: "reason", confirm: "Confirm", cancelForm: "Back", due: "due", overdue: "overdue", more: "more not shown",
    phone: "phone", emergency: "emergency contact", careNotes: "care notes", saved: "Done.", workOrder: "work order",
    loggedOut: "Logged out.", sessionEnded: "Your session ended; log in again.",
  },
  zh: {
    app: "Steward 监控中心", skip: "跳到告警", login: "登录", logout: "退出", username: "用户名", password: "密码",
    community: "小区", all: "全部", alerts: "未关闭告警", orders: "未关闭工单", noAlerts: "没有未关闭的告警。",
    noOrders: "没有未关闭的工单。", kpis: "指标", acknowledge: "确认", resolve: "解决", details: "详情",
    comment: "添加备注", resolveNote: "填写说明并解决", note: "说明", close: "关闭", opened: "发生于", age: "已持续",
    ackDue: "确认剩余", ackOverdue: "确认已超时", acknowledgedBy: "确认人", building: "楼栋", devices: "设备",
    condition: "类型", timeline: "时间线", comments: "备注", residents: "住户", masked: "已按角色脱敏",
    noComments: "暂无备注。", live: "实时", connecting: "连接中…", reconnecting: "重新连接中…", stopped: "实时连接已停止",
    tier1: "一级 生命安全", tier2: "二级 紧急", tier3: "三级 一般", open: "待确认", acknowledged: "已确认",
    resolved: "已解决", assignee: "处理人", rating: "评分 (1-5)", reason: "原因", confirm: "提交", cancelForm: "返回",
    due: "期限", overdue: "已超时", more: "条未显示", phone: "电话", emergency: "紧急联系人", careNotes: "照护备注",
    saved: "已完成。", workOrder: "工单", loggedOut: "已退出。", sessionEnded: "登录已失效，请重新登录。",
  },
};
const ACTION_TEXT = {
  en: { dispatch: "Dispatch", reassign: "Reassign", accept: "Accept", arrive: "Arrive", complete: "Complete",
        verify: "Verify", reject: "Reject", return_visit: "Return visit", close: "Close", cancel: "Cancel" },
  zh: { dispatch: "派单", reassign: "改派", accept: "接单", arrive: "到场", complete: "完工", verify: "验收",
        reject: "退回", return_visit: "回访", close: "关闭", cancel: "取消" },
};
const STATE_TEXT = {
  zh: { created: "已创建", dispatched: "已派单", accepted: "已接单", on_site: "已到场", completed: "已完工",
        verified: "已验收", return_visit_done: "已回访", closed: "已关闭", cancelled: "已取消" },
};
// What an action asks for before it is sent (the API validates it again).
const ACTION_FIELDS = {
  dispatch: [["assignee", "text", false]], reassign: [["assignee", "text", true]], reject: [["reason", "text", true]],
  verify: [["reason", "text", false]], return_visit: [["rating", "number", true], ["note", "text", false]],
  cancel: [["reason", "text", false]],
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  lang: localStorage.getItem(LANG_KEY) === "zh" ? "zh" : "en",
  me: null, config: { work_orders: false, transitions: {} }, community: "",
  alerts: new Map(), orders: new Map(), alertsTruncated: false, detailId: null, stream: null, kpiTimer: null,
  orderForm: null,
};

const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key] ?? TEXT.en[key] ?? key;

function h(tag, attrs = {}, ...children) {
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

function can(permission) { return Boolean(state.me && state.me.permissions.includes(permission)); }

// --- messages ---------------------------------------------------------------------------------------

function showError(err) {
  const box = $("message");
  box.className = "message error";
  if (err instanceof ApiError) {
    box.replaceChildren(h("strong", {}, err.code), " ", err.message, err.field ? h("span", { class: "field" }, " (" + err.field + ")") : "");
  } else {
    box.textContent = String(err && err.message ? err.message : err);
  }
  box.hidden = false;
}

function showInfo(text) {
  const box = $("message");
  box.className = "message info";
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() { $("message").hidden = true; }

async function api(method, path, opts = {}) {
  try {
    return await request(method, path, { token: state.token, ...opts });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && state.token) { endSession(t("sessionEnded")); }
    throw err;
  }
}

// --- time -------------------------------------------------------------------------------------------

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${String(mm).padStart(2, "0")}m`;
  return `${mm}m ${String(ss).padStart(2, "0")}s`;
}

function localTime(iso) { return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB") : "—"; }

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = duration(now - Date.parse(el.dataset.since));
  for (const el of document.querySelectorAll("[data-due]")) {
    const left = Date.parse(el.dataset.due) - now;
    el.textContent = (left >= 0 ? t(el.dataset.dueLabel || "due") + " " : t(el.dataset.overdueLabel || "overdue") + " ") + duration(Math.abs(left));
    el.classList.toggle("late", left < 0);
  }
}

// --- session ----------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  clearMessage();
  const form = { username: $("username").value, password: $("password").value };
  try {
    const answer = await request("POST", "/auth/token", { form });
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
  sessionStorage.removeItem(TOKEN_KEY);
  $("room").hidden = true;
  $("who").hidden = true;
  $("login-view").hidden = false;
  if (info) showInfo(text); else showError(new ApiError(401, "not_authenticated", text, null));
  $("username").focus();
}

async function enter() {
  state.me = await api("GET", "/auth/me");
  state.config = await request("GET", "/ui/config.json");
  $("login-view").hidden = true;
  $("room").hidden = false;
  $("who").hidden = false;
  $("user").textContent = `${state.me.username} · ${state.me.role}`;
  const select = $("community");
  select.replaceChildren(h("option", { value: "" }, t("all")), ...state.me.communities.map((c) => h("option", { value: c }, c)));
  select.value = state.community;
  // The stream opens first; the lists load once it is open, so no change falls between the two.
  state.stream = openStream(state.token, {
    onOpen: () => { reloadAll().catch(showError); },
    onMessage: onChange,
    onState: (s) => { $("live").textContent = "● " + t(s); $("live").dataset.state = s; },
    onEnd: () => endSession(t("sessionEnded")),
  });
  clearInterval(state.kpiTimer);
  state.kpiTimer = setInterval(() => loadKpis().catch(() => {}), 60000);
}

// --- data -------------------------------------------------------------------------------------------

function scopeQuery() { return state.community ? "&community=" + encodeURIComponent(state.community) : ""; }

async function reloadAll() {
  await Promise.all([loadAlerts(), loadOrders(), loadKpis()]);
}

async function loadAlerts() {
  const found = new Map();
  let cursor = null;
  let pages = 0;
  do {
    const page = await api("GET", `/alerts?status=open&status=acknowledged&sort=priority&limit=${PAGE}` + scopeQuery() +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    for (const a of page.data) found.set(a.id, a);
    cursor = page.next_cursor;
  } while (cursor && ++pages < MAX_PAGES);
  state.alerts = found;
  state.alertsTruncated = Boolean(cursor);
  renderAlerts();
}

async function loadOrders() {
  if (!state.config.work_orders) { $("orders-heading").parentElement.hidden = true; return; }
  const page = await api("GET", `/work-orders?open_only=true&limit=${PAGE}` + scopeQuery());
  state.orders = new Map(page.data.map((o) => [o.id, o]));
  renderOrders();
}

async function loadKpis() {
  const list = $("kpi-list");
  const community = state.community || (state.me && state.me.communities[0]);
  if (!state.config.work_orders || !community) { list.replaceChildren(); return; }
  const report = await api("GET", "/kpis?community=" + encodeURIComponent(community));
  list.replaceChildren(h("li", { class: "kpi kpi-scope" }, h("span", { class: "kpi-name" }, t("community")), h("span", { class: "kpi-value" }, report.community_id)),
    ...Object.entries(report.kpis).map(([name, k]) => h("li", {
      class: "kpi" + (k.warning ? " warn" : ""), title: `${k.definition} (threshold ${k.threshold}, warn when ${k.warn_when}; n=${k.sample})`,
    }, h("span", { class: "kpi-name" }, name.replaceAll("_", " ")),
    h("span", { class: "kpi-value" }, k.value === null ? "—" : `${Math.round(k.value * 100) / 100}${k.unit === "%" ? "%" : " " + k.unit}`))));
}

async function onChange(kind, change) {
  try {
    if (state.community && change.community_id !== state.community) return;
    if (kind === "alert") {
      const id = Number(change.entity_id);
      const detail = await api("GET", "/alerts/" + id);
      upsertAlert(detail.alert);
      if (state.detailId === id) renderDetail(detail);
    } else if (kind === "work_order") {
      const id = Number(change.entity_id);
      const detail = await api("GET", "/work-orders/" + id);
      upsertOrder(detail.order);
      scheduleKpis();
    }
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
  if (alert.status === "resolved") state.alerts.delete(alert.id); else state.alerts.set(alert.id, alert);
  renderAlerts();
}

function upsertOrder(order) {
  if (TERMINAL.has(order.state)) state.orders.delete(order.id); else state.orders.set(order.id, order);
  renderOrders();
}

// --- alerts -----------------------------------------------------------------------------------------

// Most severe tier first; inside a tier the longest-waiting alert first (its SLA runs out first).
function byTierThenAge(a, b) { return a.tier - b.tier || Date.parse(a.opened_at) - Date.parse(b.opened_at) || a.id - b.id; }

function renderAlerts() {
  const alerts = [...state.alerts.values()].sort(byTierThenAge);
  $("alert-count").textContent = `(${alerts.length}${state.alertsTruncated ? "+ " + t("more") : ""})`;
  $("alerts-empty").hidden = alerts.length > 0;
  $("alert-list").replaceChildren(...alerts.map(alertCard));
  tick();
}

function alertCard(a) {
  const tierLabel = t("tier" + a.tier);
  const actions = [];
  if (can("alert.act") && a.status === "open") actions.push(h("button", { type: "button", class: "primary", onclick: () => act(a.id, "acknowledge") }, t("acknowledge")));
  if (can("alert.act")) actions.push(h("button", { type: "button", onclick: () => act(a.id, "resolve", {}) }, t("resolve")));
  actions.push(h("button", { type: "button", onclick: () => openDetail(a.id), "aria-controls": "detail" }, t("details")));
  const where = [a.community_id, a.building_id ? `${t("building")} ${a.building_id}` : null].filter(Boolean).join(" / ");
  return h("li", { class: `alert tier-${a.tier} status-${a.status}` + (state.detailId === a.id ? " selected" : ""), dataset: { alertId: a.id, tier: a.tier, status: a.status } },
    h("div", { class: "tier-badge", "aria-label": tierLabel }, h("span", {}, "L" + a.tier), h("small", {}, tierLabel.replace(/^L\d |^\S+ /, ""))),
    h("div", { class: "alert-main" },
      h("h3", { class: "alert-title" }, a.title),
      h("p", { class: "meta" },
        h("span", {}, where), " · ",
        h("span", {}, `${t("condition")}: ${a.condition}`), " · ",
        h("span", {}, `${t("devices")}: ${a.device_ids.join(", ") || "—"}`)),
      h("p", { class: "meta" },
        h("span", { class: `status status-${a.status}` }, t(a.status)),
        a.acknowledged_by ? h("span", {}, ` ${t("acknowledgedBy")} ${a.acknowledged_by}`) : "",
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
  } catch (err) { showError(err); }
}

async function openDetail(id) {
  clearMessage();
  try {
    state.detailId = id;
    renderDetail(await api("GET", "/alerts/" + id));
    renderAlerts();
  } catch (err) { showError(err); }
}

function renderDetail(detail) {
  const a = detail.alert;
  const box = $("detail");
  box.hidden = false;
  box.className = `detail card tier-${a.tier}`;
  $("detail-heading").textContent = `#${a.id} ${a.title}`;
  const comment = h("textarea", { id: "comment-body", rows: 2, maxlength: 4000, "aria-label": t("comment") });
  const note = h("input", { id: "resolve-note", maxlength: 4000, "aria-label": t("note"), placeholder: t("note") });
  const forms = can("alert.act") && a.status !== "resolved" ? [
    h("form", { class: "inline", onsubmit: async (e) => { e.preventDefault(); await postComment(a.id, comment.value); } },
      comment, h("button", { type: "submit" }, t("comment"))),
    h("form", { class: "inline", onsubmit: async (e) => { e.preventDefault(); await act(a.id, "resolve", { note: note.value || null }); } },
      note, h("button", { type: "submit" }, t("resolveNote"))),
  ] : [];
  $("detail-body").replaceChildren(
    h("p", { class: "meta" }, `${t(a.status)} · ${t("opened")} ${localTime(a.opened_at)} · ${a.community_id}${a.building_id ? " / " + a.building_id : ""} · ${a.device_ids.join(", ")}`),
    detail.residents.length ? h("div", {}, h("h3", {}, t("residents")), h("ul", { class: "residents" }, detail.residents.map(residentItem))) : "",
    h("h3", {}, t("comments")),
    detail.comments.length ? h("ul", { class: "comments" }, detail.comments.map((c) => h("li", {}, h("b", {}, c.actor), ` ${localTime(c.at)}: `, c.body)))
      : h("p", { class: "empty" }, t("noComments")),
    ...forms,
    h("h3", {}, t("timeline")),
    h("ol", { class: "timeline" }, detail.timeline.map((e) => h("li", {}, `${localTime(e.at)} ${e.kind} · ${e.actor}` + (e.tier ? ` · L${e.tier}` : "")))),
    h("button", { type: "button", onclick: closeDetail }, t("close")));
}

// As the API returns it: masked values stay masked, nothing is recomputed here.
function residentItem(r) {
  return h("li", { class: r.masked ? "masked" : "" },
    h("b", {}, r.full_name), r.unit_id ? ` (${r.building_id || ""} ${r.unit_id})` : "",
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

// --- work orders ------------------------------------------------------------------------------------

function actionsFor(order) {
  return (state.config.transitions[order.state] || []).filter((tr) => tr.needs_any.some(can));
}

function renderOrders() {
  const orders = [...state.orders.values()].sort((a, b) => (a.tier ?? 9) - (b.tier ?? 9) || Date.parse(a.created_at) - Date.parse(b.created_at));
  $("order-count").textContent = `(${orders.length})`;
  $("orders-empty").hidden = orders.length > 0;
  $("order-list").replaceChildren(...orders.map(orderItem));
  tick();
}

function orderItem(o) {
  const stateText = (STATE_TEXT[state.lang] || {})[o.state] || o.state.replaceAll("_", " ");
  const due = o.state === "created" || o.state === "dispatched" ? o.ack_due_at : (o.state === "accepted" ? o.respond_due_at : o.complete_due_at);
  let controls;
  if (state.orderForm && state.orderForm.id === o.id) controls = orderForm(o, state.orderForm.action);
  else controls = h("div", { class: "actions" }, actionsFor(o).map((tr) => h("button", {
    type: "button", onclick: () => (ACTION_FIELDS[tr.action] ? (state.orderForm = { id: o.id, action: tr.action }, renderOrders()) : orderAction(o.id, tr.action, {})),
  }, (ACTION_TEXT[state.lang] || ACTION_TEXT.en)[tr.action] || tr.action)));
  return h("li", { class: "order" + (o.tier ? ` tier-${o.tier}` : ""), dataset: { orderId: o.id, state: o.state } },
    h("div", { class: "order-head" }, h("b", {}, `#${o.id} `), o.title),
    h("p", { class: "meta" },
      h("span", { class: "state" }, stateText),
      o.tier ? ` · L${o.tier}` : "", ` · ${o.community_id}${o.building_id ? " / " + o.building_id : ""}`,
      ` · ${t("assignee")}: ${o.assignee || "—"}`,
      due ? [" · ", h("span", { class: "sla", dataset: { due } })] : ""),
    controls);
}

function orderForm(o, action) {
  const inputs = ACTION_FIELDS[action].map(([name, type, required]) => {
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
  }, inputs, h("button", { type: "submit", class: "primary" }, (ACTION_TEXT[state.lang] || ACTION_TEXT.en)[action]),
  h("button", { type: "button", onclick: () => { state.orderForm = null; renderOrders(); } }, t("cancelForm")));
}

async function orderAction(id, action, body) {
  clearMessage();
  try {
    const order = await api("POST", `/work-orders/${id}/actions`, { json: { action, ...body } });
    state.orderForm = null;
    upsertOrder(order);
  } catch (err) { showError(err); }
}

// --- language and start -----------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang").textContent = state.lang === "zh" ? "English" : "中文 (zh)";
  document.title = t("app");
  if (state.me) {
    $("community").options[0].textContent = t("all");
    renderAlerts();
    renderOrders();
    if (state.detailId !== null) openDetail(state.detailId);
  }
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "zh" : "en";
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
  });
  $("community").addEventListener("change", (e) => {
    state.community = e.target.value;
    closeDetail();
    reloadAll().catch(showError);
  });
  applyLanguage();
  setInterval(tick, 1000);
  if (state.token) {
    try { await enter(); return; } catch { sessionStorage.removeItem(TOKEN_KEY); state.token = null; }
  }
  $("login-view").hidden = false;
}

start();
