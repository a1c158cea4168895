// The console's other views: history of alerts and work orders, the community → building → unit → device
// tree with each device's state and telemetry chart, people (staff, teams, on-call schedules and escalation policies, roster import), the demo's staff
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
      table([t("title"), t("onDuty"), t("rotation"), ...(manage ? [""] : [])],
        schedules.data.map((x) => h("tr", { dataset: { scheduleId: x.id } }, h("td", {}, x.name || x.id),
          h("td", { class: "on-duty" }, x.on_call_now.staff_id ? `● ${staffName(x.on_call_now.staff_id)}` : "—"),
          h("td", {}, x.rotations.map((r) => `${r.participants.map(staffName).join(" → ")} · ${r.shift_hours} ${codes().hours}`).join("; ")),
          manage ? h("td", { class: "row-actions" }, rowActions(x, "schedule", `/oncall/schedules/${encodeURIComponent(x.id)}`)) : ""))),
      schedules.data.length ? "" : h("p", { class: "empty" }, t("noSchedules"))),
    h("section", { class: "card" }, h("h2", {}, t("policies")),
      table([t("tier"), t("title"), t("steps"), ...(manage ? [""] : [])],
        policies.data.map((x) => h("tr", { class: x.tier ? `tier-${x.tier}` : "", dataset: { policyId: x.id } }, h("td", {}, x.tier ? "L" + x.tier : "*"),
          h("td", {}, x.name || x.id),
          h("td", {}, h("ol", { class: "steps" }, x.steps.map((st) => h("li", {},
            `${st.targets.map(target).join(", ")} · ${t("thenWait")} ${st.delay_minutes} ${codes().minutes}`)))),
          manage ? h("td", { class: "row-actions" }, rowActions(x, "policy", `/oncall/policies/${encodeURIComponent(x.id)}`)) : ""))),
      policies.data.length ? "" : h("p", { class: "empty" }, t("noPolicies"))),
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
    sections.push(scheduleForm(communities, staff, editing.schedule), policyForm(communities, staff, teams, schedules.data, editing.policy));
    sections.push(h("section", { class: "card" }, h("h2", {}, t("addStaff")), form),
      h("section", { class: "card" }, h("h2", {}, t("addTeam")), teamForm),
      h("section", { class: "card" }, h("h2", {}, t("importRoster")), file, text,
        h("div", { class: "inline" }, h("button", { type: "button", onclick: () => send(true) }, t("dryRun")),
          h("button", { type: "button", class: "primary", onclick: () => send(false) }, t("importIt")))));
  }
  $("view-people").replaceChildren(...sections);
}

// --- on-call schedules and escalation policies, from the page (supervisors, admins) ----------------------

// The schedule or policy being edited in its form (null: the form adds a new one).
const editing = { schedule: null, policy: null };

// Edit fills the form below with the row; Delete asks once more in place (no browser dialog), then deletes.
function rowActions(x, kind, path) {
  const cell = h("span", { class: "inline" });
  const edit = h("button", { type: "button", onclick: () => {
    editing[kind] = x;
    renderPeople().then(() => { const f = document.querySelector(`form[data-form="${kind}"]`); if (f) f.scrollIntoView({ block: "center" }); })
      .catch(showError);
  } }, t("edit"));
  const del = h("button", { type: "button", class: "danger", onclick: () => {
    cell.replaceChildren(
      h("button", { type: "button", class: "danger", onclick: async () => {
        clearMessage();
        try {
          await api("DELETE", path);
          if (editing[kind] && editing[kind].id === x.id) editing[kind] = null;
          showInfo(`${x.name || x.id}: ${t("deleted")}`);
          await renderPeople();
        } catch (err) { showError(err); cell.replaceChildren(edit, del); }  // refused: the row stays as it was
      } }, t("confirmDelete")),
      h("button", { type: "button", onclick: () => cell.replaceChildren(edit, del) }, t("cancelForm")));
  } }, t("deleteIt"));
  cell.append(edit, del);
  return cell;
}

const pad = (n) => String(n).padStart(2, "0");
// An instant as the browser's local date and time (an <input type=datetime-local> value), and back.
function localInput(iso) {
  const d = iso ? new Date(iso) : (() => { const x = new Date(); x.setHours(8, 0, 0, 0); return x; })();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : null);

const NUMBER = (name, value, attrs) => h("input", { type: "number", name, value: String(value), required: true, "aria-label": t(attrs.label),
  title: t(attrs.label), min: attrs.min, max: attrs.max, step: attrs.step || "any" });
const field = (label, input) => h("label", { class: "field" }, h("span", {}, t(label)), input);

// Who takes turns: one picker per place in the order, and "+ person" for one more.
function participantList(people, chosen) {
  const list = h("div", { class: "participants inline" });
  const add = (value) => list.insertBefore(h("select", { name: "participant", "aria-label": t("participants") },
    h("option", { value: "" }, "—"), people.map((p) => h("option", { value: p.id, selected: p.id === value }, p.name))), more);
  const more = h("button", { type: "button", onclick: () => add("") }, t("addPerson"));
  list.append(more);
  for (const id of chosen.length ? chosen : [""]) add(id);
  return list;
}

function rotationBox(people, r, i) {
  const box = h("fieldset", { class: "rotation" }, h("legend", {}, `${t("rotation")} ${i + 1}`),
    field("layer", NUMBER("layer", r ? r.layer : i, { label: "layer", min: 0, max: 100, step: 1 })),
    field("handoffAt", h("input", { type: "datetime-local", name: "handoff_at", required: true, value: localInput(r && r.handoff_at), "aria-label": t("handoffAt") })),
    field("shiftHours", NUMBER("shift_hours", r ? r.shift_hours : 12, { label: "shiftHours", min: 0.25, max: 744 })),
    field("participants", participantList(people, r ? r.participants : [])),
    // Optional: a layer that holds only for a while (a holiday cover); kept as they are when the schedule is edited.
    field("activeFrom", h("input", { type: "datetime-local", name: "active_from", value: r && r.active_from ? localInput(r.active_from) : null, "aria-label": t("activeFrom") })),
    field("activeUntil", h("input", { type: "datetime-local", name: "active_until", value: r && r.active_until ? localInput(r.active_until) : null, "aria-label": t("activeUntil") })),
    h("button", { type: "button", onclick: () => box.remove() }, t("removeIt")));
  return box;
}

// A schedule: its name and rotations (layer, first hand-off, shift length, people in turn order), as the API
// models them (POST /oncall/schedules; PUT replaces the rotations and keeps the overrides).
function scheduleForm(communities, staff, current) {
  const community = current ? current.community_id : communities[0];
  const people = staff.filter((p) => p.active);
  const rotations = h("div", { class: "rotations" }, (current ? current.rotations : [null]).map((r, i) => rotationBox(people, r, i)));
  const form = h("form", { class: "oncall-form", dataset: { form: "schedule" }, "aria-label": t(current ? "editSchedule" : "addSchedule"), onsubmit: async (e) => {
    e.preventDefault();
    clearMessage();
    const body = { name: form.elements.name.value.trim(), rotations: [...rotations.querySelectorAll("fieldset.rotation")].map((box) => ({
      layer: Number(box.querySelector("[name=layer]").value), handoff_at: fromLocalInput(box.querySelector("[name=handoff_at]").value),
      shift_hours: Number(box.querySelector("[name=shift_hours]").value),
      participants: [...box.querySelectorAll("select[name=participant]")].map((x) => x.value).filter(Boolean),
      active_from: fromLocalInput(box.querySelector("[name=active_from]").value),
      active_until: fromLocalInput(box.querySelector("[name=active_until]").value) })) };
    try {
      if (current) await api("PUT", `/oncall/schedules/${encodeURIComponent(current.id)}`, { json: body });
      else await api("POST", "/oncall/schedules", { json: { id: form.elements.id.value.trim(), community_id: form.elements.community_id.value, ...body } });
      editing.schedule = null;
      showInfo(`${body.name || form.elements.id.value}: ${t("saved")}`);
      await reloadStaff();
      await renderPeople();
    } catch (err) { showError(err); }
  } },
  h("div", { class: "stack" },
    h("input", { name: "id", required: true, placeholder: t("scheduleId"), "aria-label": t("scheduleId"), value: current ? current.id : null,
      readonly: Boolean(current), pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" }),
    h("input", { name: "name", maxlength: 200, placeholder: t("name"), "aria-label": t("name"), value: current ? current.name : null }),
    h("select", { name: "community_id", "aria-label": t("community"), disabled: Boolean(current) },
      (current ? [community] : communities).map((c) => h("option", { value: c }, placeName(c))))),
  rotations,
  h("div", { class: "inline" },
    h("button", { type: "button", onclick: () => rotations.append(rotationBox(people, null, rotations.children.length)) }, t("addRotation")),
    h("button", { type: "submit", class: "primary" }, t("save")),
    current ? h("button", { type: "button", onclick: () => { editing.schedule = null; renderPeople().catch(showError); } }, t("cancelForm")) : ""));
  return h("section", { class: "card" }, h("h2", {}, current ? `${t("editSchedule")}: ${current.name || current.id}` : t("addSchedule")), form);
}

// Whom a step pages: a schedule (whoever is on duty then), a whole team, or named people.
function targetPicker(schedules, teams, people, chosen) {
  const option = (value, label) => h("option", { value, selected: chosen.includes(value) }, label);
  return h("select", { name: "targets", multiple: true, size: 5, required: true, "aria-label": t("targets"), title: t("targets") },
    h("optgroup", { label: t("schedules") }, schedules.map((x) => option(`schedule:${x.id}`, `${x.name || x.id} ${t("whoeverOnDuty")}`))),
    h("optgroup", { label: t("teams") }, teams.filter((x) => x.active !== false).map((x) => option(`team:${x.id}`, `${x.name} ${t("wholeTeam")}`))),
    h("optgroup", { label: t("staff") }, people.map((p) => option(`staff:${p.id}`, p.name))));
}

function stepBox(schedules, teams, people, st) {
  const box = h("fieldset", { class: "step" }, h("legend", {}, t("step")),
    field("targets", targetPicker(schedules, teams, people, st ? st.targets : [])),
    field("waitMinutes", NUMBER("delay_minutes", st ? st.delay_minutes : 5, { label: "waitMinutes", min: 0, max: 1440 })),
    h("button", { type: "button", onclick: () => box.remove() }, t("removeIt")));
  return box;
}

// A policy: for a tier of a community, steps in order (whom to page, then how long to wait for an
// acknowledgement before the next step), how often the chain repeats, and its reminders.
function policyForm(communities, staff, teams, schedules, current) {
  const people = staff.filter((p) => p.active);
  const steps = h("div", { class: "steps" }, (current ? current.steps : [null]).map((st) => stepBox(schedules, teams, people, st)));
  const tierNames = [["1", t("tier1")], ["2", t("tier2")], ["3", t("tier3")], ["", t("anyTierPolicy")]];
  const form = h("form", { class: "oncall-form", dataset: { form: "policy" }, "aria-label": t(current ? "editPolicy" : "addPolicy"), onsubmit: async (e) => {
    e.preventDefault();
    clearMessage();
    const el = form.elements;
    const body = { name: el.name.value.trim(), repeat: Number(el.repeat.value), ack_renotify_minutes: Number(el.ack_renotify_minutes.value),
      reminder_minutes: Number(el.reminder_minutes.value),
      steps: [...steps.querySelectorAll("fieldset.step")].map((box) => ({
        targets: [...box.querySelector("select[name=targets]").selectedOptions].map((o) => o.value),
        delay_minutes: Number(box.querySelector("[name=delay_minutes]").value) })) };
    try {
      if (current) await api("PUT", `/oncall/policies/${encodeURIComponent(current.id)}`, { json: body });
      else await api("POST", "/oncall/policies", { json: { id: el.id.value.trim(), community_id: el.community_id.value,
        tier: el.tier.value ? Number(el.tier.value) : null, ...body } });
      editing.policy = null;
      showInfo(`${body.name || el.id.value}: ${t("saved")}`);
      await renderPeople();
    } catch (err) { showError(err); }
  } },
  h("div", { class: "stack" },
    h("input", { name: "id", required: true, placeholder: t("policyId"), "aria-label": t("policyId"), value: current ? current.id : null,
      readonly: Boolean(current), pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" }),
    h("input", { name: "name", maxlength: 200, placeholder: t("name"), "aria-label": t("name"), value: current ? current.name : null }),
    h("select", { name: "community_id", "aria-label": t("community"), disabled: Boolean(current) },
      (current ? [current.community_id] : communities).map((c) => h("option", { value: c }, placeName(c)))),
    h("select", { name: "tier", "aria-label": t("tier"), disabled: Boolean(current) },
      tierNames.map(([v, label]) => h("option", { value: v, selected: current ? String(current.tier ?? "") === v : v === "1" }, label)))),
  steps,
  h("div", { class: "stack" },
    field("repeatChain", NUMBER("repeat", current ? current.repeat : 0, { label: "repeatChain", min: 0, max: 10, step: 1 })),
    field("ackRenotify", NUMBER("ack_renotify_minutes", current ? current.ack_renotify_minutes : 30, { label: "ackRenotify", min: 0, max: 1440 })),
    field("reminderMinutes", NUMBER("reminder_minutes", current ? current.reminder_minutes : 15, { label: "reminderMinutes", min: 0, max: 1440 }))),
  h("div", { class: "inline" },
    h("button", { type: "button", onclick: () => steps.append(stepBox(schedules, teams, people, null)) }, t("addStep")),
    h("button", { type: "submit", class: "primary" }, t("save")),
    current ? h("button", { type: "button", onclick: () => { editing.policy = null; renderPeople().catch(showError); } }, t("cancelForm")) : ""));
  return h("section", { class: "card" }, h("h2", {}, current ? `${t("editPolicy")}: ${current.name || current.id}` : t("addPolicy")), form);
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
        page.data.map((d) => h("tr", { dataset: { deadId: d.id } }, h("td", {}, localTime(d.received_at)),
          h("td", { class: "reason", title: d.reason }, h("strong", {}, codes().rejected[d.reason] || d.reason), h("br"), h("small", { class: "secondary", lang: "en" }, d.reason)),
          h("td", { class: "device-name" }, d.device_name ? h("button", { type: "button", class: "link", onclick: () => openDevice(d.device_id) }, d.device_name) : (d.device_id || "—")),
          h("td", {}, d.topic),
          // What the reason means in the page's language; the gateway's own words (English, exact) stay below it.
          h("td", { class: "detail", title: d.payload_text }, (codes().rejectedHelp || {})[d.reason] || "", h("br"),
            h("small", { class: "secondary" }, codes().gatewaySaid, h("span", { lang: "en" }, d.detail))))))));
}
