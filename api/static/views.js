// The console's other views: history of alerts and work orders, the community → building → unit → device
// tree with each device's state and telemetry chart, people (staff, teams, roster import), the demo's staff
// phone with the signed action links it received, and dead letters.

import { CODE_TEXT, ROLE_TEXT, TEAM_TEXT } from "./i18n.js";
import {
  $, api, can, clearMessage, condition, h, lineChart, localTime, placeName, scopeQuery, showError, showInfo,
  staffName, state, stateText, t, whereText,
} from "./ui.js";

const codes = () => CODE_TEXT[state.lang] || CODE_TEXT.en;
const FAMILIES = ["elevator", "water", "access", "elderly"];
const skillName = (s) => (FAMILIES.includes(s) ? t(s) : condition(s));
const listJoin = (items) => items.join(state.lang === "zh" ? "、" : ", ");

const VIEWS = ["board", "history", "devices", "people", "phone", "dead"];
const RENDER = { history: renderHistory, devices: renderDevices, people: renderPeople, phone: renderPhone, dead: renderDead };
let deviceId = null;
let chartHours = 24;
let quantity = null;  // the event type charted for the chosen device (its primary reading)

// What a device's readings are, per event type: the type's primary value (domain/payloads.py PRIMARY_VALUE),
// its name in both languages and its unit. Telemetry first; the battery (heartbeat) last.
const QUANTITIES = {
  flow: ["流量", "flow", "L/min"], pressure: ["水压", "pressure", "kPa"], tank_level: ["水位", "tank level", "%"],
  status: ["轿厢速度", "car speed", "m/s"], trip: ["运行时长", "trip duration", "s"],
  heartbeat: ["电量", "battery", "%"], sensor_battery: ["传感器电量", "sensor battery", "%"],
};
const CHARTED = {
  water: ["flow", "pressure", "tank_level", "heartbeat"], elevator: ["status", "trip", "heartbeat"],
  access: ["heartbeat"], elderly: ["heartbeat", "sensor_battery"],
};
const quantityName = (type) => (QUANTITIES[type] ? QUANTITIES[type][state.lang === "zh" ? 0 : 1] : type);
const quantityLabel = (type) => `${quantityName(type)}${QUANTITIES[type] ? ` (${QUANTITIES[type][2]})` : ""}`;

// From an alert to its device: the tree with the device chosen, its state and its telemetry chart.
export function openDevice(id) {
  deviceId = id;
  quantity = null;
  showView("devices");
}

export function showView(name) {
  state.view = VIEWS.includes(name) ? name : "board";
  for (const v of VIEWS) $("view-" + v).hidden = v !== state.view;
  for (const b of document.querySelectorAll("[data-view]")) b.setAttribute("aria-current", String(b.dataset.view === state.view));
  clearMessage();
  if (RENDER[state.view]) RENDER[state.view]().catch(showError);
}

// Live changes refresh the view on screen (the phone gets a new message, history a closed order...).
let soon = null;
export function refreshView(name) {
  clearTimeout(soon);
  soon = setTimeout(() => { if (state.view === name && RENDER[name]) RENDER[name]().catch(() => {}); }, 800);
}

const openAlert = (id) => document.dispatchEvent(new CustomEvent("steward:open-alert", { detail: id }));
const openOrder = (id) => document.dispatchEvent(new CustomEvent("steward:open-order", { detail: id }));

function table(headers, rows) {
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

// --- history ------------------------------------------------------------------------------------------

// The History view's own filters: tier and search over resolved alerts (the board's filters stay the board's).
const historyFilter = { tier: "", q: "" };

function historyForm() {
  const tier = h("select", { name: "tier", "aria-label": t("tier") },
    [["", t("anyTier")], ["1", t("tier1")], ["2", t("tier2")], ["3", t("tier3")]].map(([value, label]) =>
      h("option", { value, selected: historyFilter.tier === value }, label)));
  const q = h("input", { name: "q", type: "search", value: historyFilter.q, placeholder: t("search"), "aria-label": t("search"), maxlength: 100 });
  const form = h("form", { class: "filters history-filters", onsubmit: (e) => {
    e.preventDefault();
    historyFilter.tier = tier.value;
    historyFilter.q = q.value.trim();
    renderHistory().catch(showError);
  } }, tier, q, h("button", { type: "submit" }, t("apply")));
  tier.onchange = () => form.requestSubmit();
  return form;
}

async function renderHistory() {
  const filters = (historyFilter.tier ? "&tier=" + historyFilter.tier : "") + (historyFilter.q ? "&q=" + encodeURIComponent(historyFilter.q) : "");
  const [alerts, orders] = await Promise.all([
    api("GET", "/alerts?status=resolved&sort=newest&limit=100" + filters + scopeQuery()),
    state.config.work_orders ? api("GET", "/work-orders?limit=100" + scopeQuery()) : { data: [] },
  ]);
  $("view-history").replaceChildren(
    h("section", { class: "card" }, h("h2", {}, t("historyAlerts")), historyForm(),
      table([t("tier"), t("condition"), t("building"), t("opened"), t("resolved"), t("resolvedAs"), t("reason")],
        alerts.data.map((a) => h("tr", { class: `tier-${a.tier}` },
          h("td", {}, "L" + a.tier), h("td", {}, h("button", { type: "button", class: "link", onclick: () => openAlert(a.id) }, `#${a.id} ${condition(a.condition)}`)),
          h("td", {}, whereText(a.community_id, a.building_id)), h("td", {}, localTime(a.opened_at)),
          h("td", {}, `${localTime(a.resolved_at)} · ${staffName(a.resolved_by)}`),
          h("td", {}, a.resolution ? t(a.resolution) : "—"), h("td", {}, a.resolution_reason || "")))),
      alerts.data.length ? "" : h("p", { class: "empty" }, t(filters ? "noAlerts" : "noHistoryAlerts"))),
    h("section", { class: "card" }, h("h2", {}, t("historyOrders")),
      table(["#", t("condition"), t("state"), t("assignee"), t("building"), t("created")],
        orders.data.map((o) => h("tr", { class: o.tier ? `tier-${o.tier}` : "" },
          h("td", {}, h("button", { type: "button", class: "link", dataset: { orderId: o.id }, onclick: () => openOrder(o.id) }, `#${o.id}`)),
          h("td", {}, o.condition ? condition(o.condition) : o.title),
          h("td", {}, stateText(o.state)), h("td", {}, staffName(o.assignee)),
          h("td", {}, whereText(o.community_id, o.building_id)), h("td", {}, localTime(o.created_at))))),
      orders.data.length ? "" : h("p", { class: "empty" }, t("noHistoryOrders"))));
}

// --- devices ------------------------------------------------------------------------------------------

function deviceButton(d) {
  const battery = d.battery === null || d.battery === undefined ? "" : ` · ${Math.round(d.battery)}%`;
  return h("li", {},
    h("button", { type: "button", class: `device state-${d.state}` + (d.device_id === deviceId ? " selected" : ""), dataset: { deviceId: d.device_id },
      onclick: () => { deviceId = d.device_id; quantity = null; renderDevices().catch(showError); } },
      h("span", { class: "dot", "aria-hidden": "true" }), `${d.name || d.device_id}`,
      h("small", {}, ` ${t(d.state)}${battery}`),
      d.open_incidents ? h("span", { class: `badge tier-${d.worst_tier}` }, `${d.open_incidents}`) : ""));
}

async function renderDevices() {
  const tree = await api("GET", "/tree" + (state.community ? "?community=" + encodeURIComponent(state.community) : ""));
  const all = [];
  const nav = h("nav", { class: "tree card", "aria-label": t("tree") }, h("h2", {}, t("tree")),
    tree.map((c) => h("details", { open: true }, h("summary", {}, `${c.name} — ${Object.entries(c.counts).map(([k, v]) => `${t(k)} ${v}`).join(" · ")}`),
      h("ul", {}, c.devices.map((d) => { all.push(d); return deviceButton(d); })),
      c.buildings.map((b) => {
        const problems = [...b.devices, ...b.units.flatMap((u) => u.devices)].filter((d) => d.state !== "online" || d.open_incidents);
        return h("details", { open: problems.length > 0 && problems.length < 8 }, h("summary", {}, `${b.name} (${b.units.length} ${t("unitsOf")})`,
          problems.length ? h("span", { class: "badge warn" }, String(problems.length)) : ""),
        h("ul", {}, b.devices.map((d) => { all.push(d); return deviceButton(d); })),
        b.units.map((u) => h("details", { open: u.devices.some((d) => d.device_id === deviceId || d.open_incidents) },
          h("summary", {}, u.name, u.devices.some((d) => d.open_incidents) ? h("span", { class: "badge warn" }, "!") : ""),
          h("ul", {}, u.devices.map((d) => { all.push(d); return deviceButton(d); })))));
      }))));
  const panel = h("section", { class: "device-panel card", "aria-live": "polite" });
  const chosen = all.find((d) => d.device_id === deviceId);
  if (!chosen) panel.append(h("p", { class: "empty" }, t("chooseDevice")));
  else {
    const to = new Date(Date.now() + (state.serverSkewMs || 0));  // the server's now, not this PC's clock
    const from = new Date(to.getTime() - chartHours * 3600e3);
    const bucket = chartHours <= 24 ? "5m" : "1h";
    // One series per quantity the device reports (a meter's value is its flow on one type and its battery on
    // another: the API charts one type at a time); those without readings in the period are not offered.
    const types = CHARTED[chosen.device_type] || ["heartbeat"];
    const range = `bucket=${bucket}&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
    const [found, alerts] = await Promise.all([
      Promise.all(types.map((type) => api("GET", `/devices/${encodeURIComponent(chosen.device_id)}/series?type=${type}&${range}`))),
      api("GET", `/alerts?device=${encodeURIComponent(chosen.device_id)}&sort=newest&limit=10`),
    ]);
    const offered = found.filter((s) => s.points.some((p) => p.avg !== null));
    const series = offered.find((s) => s.type === quantity) || offered[0] || { type: null, points: [] };
    panel.append(
      h("h2", {}, chosen.name || chosen.device_id),
      h("p", { class: "meta" }, `${chosen.device_id} · ${t(chosen.device_type)} · ${t(chosen.state)} · ${t("battery")} ${chosen.battery === null || chosen.battery === undefined ? "—" : Math.round(chosen.battery) + "%"} · ${t("lastSeen")} ${localTime(chosen.last_seen_at)}`),
      h("h3", {}, t(bucket === "5m" ? "telemetry" : "telemetryHourly")),
      h("div", { class: "inline" }, [24, 168].map((hours) => h("button", { type: "button", "aria-pressed": String(hours === chartHours),
        onclick: () => { chartHours = hours; renderDevices().catch(showError); } }, hours === 24 ? t("last24h") : t("last7d")))),
      offered.length > 1 ? h("div", { class: "inline quantities" }, offered.map((s) => h("button", { type: "button", dataset: { quantity: s.type },
        "aria-pressed": String(s.type === series.type), onclick: () => { quantity = s.type; renderDevices().catch(showError); } }, quantityName(s.type)))) : "",
      series.type ? h("p", { class: "meta chart-label", dataset: { quantity: series.type } }, quantityLabel(series.type)) : "",
      series.type ? lineChart(series.points, { label: `${chosen.name || chosen.device_id} · ${quantityLabel(series.type)}` }) : h("p", { class: "empty" }, t("noData")),
      h("h3", {}, t("alerts")),
      h("ul", { class: "plain" }, alerts.data.map((a) => h("li", { class: `tier-${a.tier}` },
        h("button", { type: "button", class: "link", onclick: () => openAlert(a.id) }, `L${a.tier} ${condition(a.condition)} · ${t(a.status)} · ${localTime(a.opened_at)}`)))));
  }
  $("view-devices").replaceChildren(h("div", { class: "split" }, nav, panel));
}

// --- people -------------------------------------------------------------------------------------------

async function renderPeople() {
  const scope = scopeQuery().replace("&", "?");
  const [staff, teams, schedules, policies, users] = await Promise.all([api("GET", "/staff" + scope), api("GET", "/teams" + scope),
    api("GET", "/oncall/schedules" + scope).catch(() => ({ data: [] })), api("GET", "/oncall/policies" + scope).catch(() => ({ data: [] })),
    can("user.manage") ? api("GET", "/users") : null]);
  const target = (text) => {
    const [kind, id] = text.split(":");
    if (kind === "staff") return staffName(id);
    if (kind === "schedule") return (schedules.data.find((x) => x.id === id) || { name: id }).name + ` (${t("onDuty")})`;
    return (teams.find((x) => x.id === id) || { name: id }).name;
  };
  const roles = ROLE_TEXT[state.lang] || ROLE_TEXT.en;
  const kinds = TEAM_TEXT[state.lang] || TEAM_TEXT.en;
  const manage = can("oncall.manage");
  const sections = [
    h("section", { class: "card" }, h("h2", {}, t("staff")),
      table([t("name"), t("team"), t("role"), t("onDuty"), t("load"), t("contacts"), t("linkedLogin"), ...(manage ? [""] : [])],
        staff.map((p) => h("tr", { dataset: { staffId: p.id, active: String(p.active) }, class: p.active ? "" : "inactive" },
          h("td", {}, p.name, p.active ? "" : h("small", {}, ` (${t("inactive")})`)), h("td", {}, p.team_name || "—"), h("td", {}, roles[p.role] || p.role),
          h("td", { class: p.on_duty.length ? "on-duty" : "" }, p.on_duty.length ? `● ${p.on_duty.join(", ")}` : t("offDuty")),
          h("td", {}, String(p.open_orders)), h("td", { class: "contacts" }, listJoin(p.contacts.map((c) => codes().channel[c.channel] || c.channel)) || "—",
            manage ? [" ", h("button", { type: "button", class: "link", onclick: (e) => editContacts(e.target.closest("td"), p) }, t("edit"))] : ""),
          h("td", { class: "linked-login" }, users ? loginPicker(p, staff, users) : (p.username || "—")),
          manage ? h("td", {}, h("button", { type: "button", onclick: () => setActive(p, !p.active) },
            p.active ? t("deactivate") : t("activate"))) : "")))),
    h("section", { class: "card" }, h("h2", {}, t("teams")),
      table([t("title"), t("kind"), t("skills"), t("members"), t("lead")],
        teams.map((x) => h("tr", {}, h("td", {}, x.name), h("td", {}, kinds[x.kind] || x.kind), h("td", {}, listJoin(x.skills.map(skillName)) || "—"),
          h("td", {}, String(x.members)), h("td", {}, staffName(x.lead_staff_id)))))),
    h("section", { class: "card" }, h("h2", {}, t("schedules")),
      table([t("title"), t("onDuty"), t("rotation")],
        schedules.data.map((x) => h("tr", { dataset: { scheduleId: x.id } }, h("td", {}, x.name || x.id),
          h("td", { class: "on-duty" }, x.on_call_now.staff_id ? `● ${staffName(x.on_call_now.staff_id)}` : "—"),
          h("td", {}, x.rotations.map((r) => `${r.participants.map(staffName).join(" → ")} · ${r.shift_hours} ${codes().hours}`).join("; ")))))),
    h("section", { class: "card" }, h("h2", {}, t("policies")),
      table([t("tier"), t("title"), t("steps")],
        policies.data.map((x) => h("tr", { class: x.tier ? `tier-${x.tier}` : "" }, h("td", {}, x.tier ? "L" + x.tier : "*"),
          h("td", {}, x.name || x.id),
          h("td", {}, h("ol", { class: "steps" }, x.steps.map((st) => h("li", {},
            `${st.targets.map(target).join(", ")} · ${t("thenWait")} ${st.delay_minutes} ${codes().minutes}`)))))))),
  ];
  if (can("oncall.manage")) {
    const communities = state.community ? [state.community] : state.me.communities;
    const form = h("form", { class: "stack", "aria-label": t("addStaff"), onsubmit: async (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const body = { id: data.id, community_id: data.community_id, name: data.name, role: data.role,
        team_id: data.team_id || null, phone: data.phone || null, contacts: data.phone ? [{ channel: "webhook" }] : [] };
      try { await api("POST", "/staff", { json: body }); showInfo(t("saved")); await reloadStaff(); await renderPeople(); } catch (err) { showError(err); }
    } },
    h("input", { name: "id", required: true, placeholder: t("staffId"), "aria-label": t("staffId"), pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" }),
    h("input", { name: "name", required: true, placeholder: t("name"), "aria-label": t("name") }),
    h("select", { name: "community_id", "aria-label": t("community") }, communities.map((c) => h("option", { value: c }, placeName(c)))),
    h("select", { name: "team_id", "aria-label": t("team") }, h("option", { value: "" }, "—"), teams.map((x) => h("option", { value: x.id }, x.name))),
    h("select", { name: "role", "aria-label": t("role") }, Object.keys(roles).filter((r) => r !== "admin").map((r) => h("option", { value: r }, roles[r]))),
    h("input", { name: "phone", placeholder: t("phone"), "aria-label": t("phone") }),
    h("button", { type: "submit", class: "primary" }, t("save")));
    // A team: its kind, the families it handles (dispatch matches them) and the buildings it covers.
    const buildings = [...state.places.values()].filter((x) => x.kind === "building" && communities.includes(x.community_id));
    const teamForm = h("form", { class: "stack", "aria-label": t("addTeam"), onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(teamForm);
      const body = { id: data.get("id"), community_id: data.get("community_id"), name: data.get("name"), kind: data.get("kind"),
        skills: data.getAll("skills"), buildings: data.getAll("buildings") };
      try { await api("POST", "/teams", { json: body }); showInfo(`${body.name}: ${t("saved")}`); await renderPeople(); } catch (err) { showError(err); }
    } },
    h("input", { name: "id", required: true, placeholder: t("teamId"), "aria-label": t("teamId"), pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" }),
    h("input", { name: "name", required: true, maxlength: 200, placeholder: t("name"), "aria-label": t("name") }),
    h("select", { name: "community_id", "aria-label": t("community") }, communities.map((c) => h("option", { value: c }, placeName(c)))),
    h("select", { name: "kind", "aria-label": t("kind") }, Object.entries(kinds).map(([k, label]) => h("option", { value: k }, label))),
    h("fieldset", { class: "inline" }, h("legend", {}, t("skills")), FAMILIES.map((f) => h("label", {},
      h("input", { type: "checkbox", name: "skills", value: f }), " ", t(f)))),
    h("select", { name: "buildings", multiple: true, "aria-label": t("wholeCommunity"), title: t("wholeCommunity") },
      buildings.map((b) => h("option", { value: b.id }, b.name))),
    h("button", { type: "submit", class: "primary" }, t("save")));
    const text = h("textarea", { name: "toml", rows: 10, "aria-label": t("importRoster"), spellcheck: "false" });
    const file = h("input", { type: "file", accept: ".toml,text/plain", "aria-label": t("importRoster"),
      onchange: async () => { if (file.files[0]) text.value = await file.files[0].text(); } });
    const send = async (dryRun) => {
      try {
        const answer = await api("POST", "/roster/import", { json: { toml: text.value, dry_run: dryRun } });
        showInfo(`${dryRun ? t("dryRun") : t("imported")}: ` + listJoin(Object.entries(answer.counts).map(([k, v]) => `${codes().counts[k] || k} ${v}`)));
        if (!dryRun) { await reloadStaff(); await renderPeople(); }
      } catch (err) { showError(err); }
    };
    sections.push(h("section", { class: "card" }, h("h2", {}, t("addStaff")), form),
      h("section", { class: "card" }, h("h2", {}, t("addTeam")), teamForm),
      h("section", { class: "card" }, h("h2", {}, t("importRoster")), file, text,
        h("div", { class: "inline" }, h("button", { type: "button", onclick: () => send(true) }, t("dryRun")),
          h("button", { type: "button", class: "primary", onclick: () => send(false) }, t("importIt")))));
  }
  $("view-people").replaceChildren(...sections);
}

// Which login is this person (admins): what the login acknowledges and accepts is then done by them, by name.
// A login linked to somebody else is not offered; choosing another one first unlinks the current one.
function loginPicker(p, staff, users) {
  const taken = new Set(staff.filter((x) => x.id !== p.id && x.username).map((x) => x.username));
  const select = h("select", { name: "login", "aria-label": `${t("linkedLogin")} · ${p.name}` },
    h("option", { value: "" }, "—"),
    users.filter((u) => (u.active && !taken.has(u.username) && (u.all_communities || u.communities.includes(p.community_id)))
      || u.username === p.username)
      .map((u) => h("option", { value: u.username, selected: u.username === p.username }, u.username)));
  select.onchange = async () => {
    clearMessage();
    const id = (name) => users.find((u) => u.username === name).id;
    try {
      if (p.username) await api("PUT", `/users/${id(p.username)}/staff`, { json: { staff_id: null } });
      if (select.value) await api("PUT", `/users/${id(select.value)}/staff`, { json: { staff_id: p.id } });
      showInfo(`${p.name}: ${t("saved")}`);
      await reloadStaff();
      await renderPeople();
    } catch (err) { showError(err); await renderPeople().catch(() => {}); }
  };
  return select;
}

// How on-call reaches a person: which channels, in which language (addresses default to the person's phone
// for the SMS/IM gateway and e-mail; the app needs none).
function editContacts(cell, p) {
  const had = new Map(p.contacts.map((c) => [c.channel, c]));
  const boxes = ["webhook", "email", "push"].map((channel) => h("label", {},
    h("input", { type: "checkbox", name: channel, checked: had.has(channel) }), " ", codes().channel[channel]));
  const locale = h("select", { name: "locale", "aria-label": t("language") },
    [["zh-CN", "中文"], ["en", "English"]].map(([v, label]) => h("option", { value: v, selected: (p.contacts[0] || {}).locale === v }, label)));
  const form = h("form", { class: "inline", "aria-label": t("contacts"), onsubmit: async (e) => {
    e.preventDefault();
    const body = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked)
      .map((i) => ({ channel: i.name, address: (had.get(i.name) || {}).address || "", locale: locale.value }));
    clearMessage();
    try {
      await api("PUT", `/staff/${encodeURIComponent(p.id)}/contacts`, { json: body });
      showInfo(`${p.name}: ${t("saved")}`);
      await reloadStaff();
      await renderPeople();
    } catch (err) { showError(err); }
  } }, boxes, locale, h("button", { type: "submit", class: "primary" }, t("save")));
  cell.replaceChildren(form);
}

// Somebody leaves or comes back: inactive people are not dispatched or paged, and their action links die.
async function setActive(p, active) {
  clearMessage();
  const body = { name: p.name, team_id: p.team_id, role: p.role, skills: p.skills, buildings: p.buildings, phone: p.phone,
    email: p.email, max_open_orders: p.max_open_orders, active };
  try {
    await api("PUT", "/staff/" + encodeURIComponent(p.id), { json: body });
    showInfo(`${p.name}: ${active ? t("activated") : t("deactivated")}`);
    await reloadStaff();
    await renderPeople();
  } catch (err) { showError(err); }
}

async function reloadStaff() {
  const staff = await api("GET", "/staff");
  state.staff = new Map(staff.map((p) => [p.id, p]));
}

// --- the demo's phone ---------------------------------------------------------------------------------

async function renderPhone() {
  const messages = await api("GET", "/demo/phone?limit=50" + scopeQuery());
  $("view-phone").replaceChildren(h("section", { class: "card phone" }, h("h2", {}, t("phoneTitle")), h("p", { class: "meta" }, t("phoneNote")),
    messages.length === 0 ? h("p", { class: "empty" }, t("noPhone")) :
      h("ul", { class: "messages" }, messages.map((m) => h("li", { class: "sms", dataset: { incidentId: m.incident_id ?? "" } },
        h("p", { class: "meta" }, `${t("to")} ${m.staff_name || m.staff_id} · ${localTime(m.received_at)}`),
        h("p", { class: "subject" }, m.subject),
        h("pre", {}, m.body.split("\n").filter((line) => !line.includes("/oncall/links/")).join("\n")),
        h("div", { class: "actions" },
          m.links.ack ? h("a", { href: m.links.ack, target: "_blank", rel: "noopener noreferrer", class: "button primary" }, t("ackLink")) : "",
          m.links.resolve ? h("a", { href: m.links.resolve, target: "_blank", rel: "noopener noreferrer", class: "button" }, t("resolveLink")) : ""))))));
}

// --- dead letters -------------------------------------------------------------------------------------

async function renderDead() {
  const page = await api("GET", "/dead-letters?limit=100" + scopeQuery());
  $("view-dead").replaceChildren(h("section", { class: "card" }, h("h2", {}, t("deadTitle")),
    page.data.length === 0 ? h("p", { class: "empty" }, t("noDead")) :
      table([t("receivedAt"), t("reason"), t("devices"), t("topic"), t("detail")],
        page.data.map((d) => h("tr", { dataset: { deadId: d.id } }, h("td", {}, localTime(d.received_at)), h("td", { title: d.reason }, codes().rejected[d.reason] || d.reason),
          h("td", { class: "device-name" }, d.device_name ? h("button", { type: "button", class: "link", onclick: () => openDevice(d.device_id) }, d.device_name) : (d.device_id || "—")),
          h("td", {}, d.topic), h("td", { title: d.payload_text }, d.detail))))));
}
