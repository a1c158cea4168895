// Every string an operator reads, in English and Chinese. The page starts in Chinese when the browser prefers it
// (navigator.languages), unless the user chose a language (remembered in localStorage). The API's error messages
// follow the same choice through Accept-Language; alert titles come from the detectors in English, so the page
// shows the condition's name in the chosen language and keeps the detector's wording as a subtitle only in English.

export const LANG_KEY = "steward.lang";

export function initialLanguage() {
  const chosen = localStorage.getItem(LANG_KEY);
  if (chosen === "zh" || chosen === "en") return chosen;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  return String(langs[0] || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export const TEXT = {
  en: {
    app: "Steward control room", skip: "Skip to alerts", login: "Log in", logout: "Log out", username: "Username",
    password: "Password", community: "Community", all: "All", alerts: "Alerts", orders: "Open work orders",
    noAlerts: "No alerts match.", noOrders: "No open work orders.", kpis: "KPIs", acknowledge: "Acknowledge",
    resolve: "Resolve", details: "Details", comment: "Add comment", note: "Note", close: "Close", opened: "opened",
    age: "age", ackDue: "ack due in", ackOverdue: "ack overdue by", acknowledgedBy: "acknowledged by",
    building: "building", devices: "devices", condition: "condition", timeline: "Timeline", comments: "Comments",
    residents: "Residents", masked: "masked for your role", noComments: "No comments yet.", live: "live",
    connecting: "connecting…", reconnecting: "reconnecting…", stopped: "stream stopped", tier1: "L1 life safety",
    tier2: "L2 urgent", tier3: "L3 routine", open: "unacknowledged", acknowledged: "acknowledged",
    resolved: "resolved", assignee: "assignee", rating: "rating (1-5)", reason: "reason", confirm: "Confirm",
    cancelForm: "Back", due: "due", overdue: "overdue", more: "more not shown", phone: "phone",
    emergency: "emergency contact", careNotes: "care notes", saved: "Done.", workOrder: "work order",
    loggedOut: "Logged out.", sessionEnded: "Your session ended; log in again.",
    // navigation
    navBoard: "Live board", navHistory: "History", navDevices: "Devices", navPeople: "People", navPhone: "Phone",
    navDead: "Dead letters", kiosk: "Wall screen", exitKiosk: "Exit wall screen",
    // filters
    tier: "Tier", family: "Family", status: "Status", since: "Opened", search: "Search", anyTier: "any tier",
    anyFamily: "any family", anyBuilding: "any building", activeStatus: "open + acknowledged", anyStatus: "any status",
    anyTime: "any time", last1h: "last hour", last24h: "last 24 h", last7d: "last 7 days", last30d: "last 30 days",
    elevator: "lifts", water: "water", access: "doors", elderly: "elderly residents", apply: "Apply",
    selectAll: "Select all", ackSelected: "Acknowledge selected", selected: "selected",
    bulkDone: "{n} acknowledged", bulkFailed: "{n} could not be acknowledged",
    // detail actions
    resolution: "Resolution", confirmed: "confirmed (real event)", false_alarm: "false alarm", duplicate: "duplicate",
    duplicateOf: "duplicate of alert #", reasonRequired: "reason (required for Level 1)", assign: "Assign",
    assignTo: "Assign to", escalate: "Escalate", toTier: "to tier", pickStaff: "choose a person",
    onDuty: "on duty", offDuty: "off duty", load: "open orders", resolvedAs: "resolved as",
    // sound
    notify: "Level 1 sound and notifications", enableNotify: "Enable notifications", muteShift: "Mute for this shift",
    unmute: "Sound on", muted: "muted until", newLevel1: "New Level 1 alert", notifyBlocked: "Notifications blocked",
    notifyBlockedHelp: "This browser blocks Steward's notifications: allow them in the site settings (the lock icon by the address)",
    // history
    historyAlerts: "Alert history", noHistoryAlerts: "No resolved alerts yet.", noHistoryOrders: "No work orders yet.", historyOrders: "Work-order history", state: "state", created: "created",
    // devices
    tree: "Community, buildings, units", online: "online", offline: "offline", never_seen: "never seen",
    battery: "battery", openIncidents: "open alerts", lastSeen: "last seen", telemetry: "Telemetry (5-minute roll-ups)", telemetryHourly: "Telemetry (hourly)",
    noData: "No readings in this period.", chooseDevice: "Choose a device in the tree.", reading: "reading",
    period: "period", devicesCount: "devices", unitsOf: "units",
    // people
    unreachable: "the server cannot be reached: check the network; the page retries the live stream by itself",
    httpError: "the server answered with an error page, status",
    progressNote: "progress note (what was found, what was done)", addNote: "Add note",
    level1Hidden: "{n} unacknowledged Level 1 alert(s) hidden by the filters: show all",
    edit: "edit", language: "language", showDevice: "its state and telemetry",
    title: "name", inactive: "inactive", deactivate: "Deactivate", activate: "Reactivate", deactivated: "deactivated",
    activated: "active again",
    staff: "Staff", teams: "Teams", team: "team", role: "role", skills: "skills", contacts: "contacts",
    addStaff: "Add a staff member", addTeam: "Add a team", teamId: "team id", wholeCommunity: "buildings (none: the whole community)", save: "Save", staffId: "staff id", name: "name", importRoster: "Import roster (TOML)",
    importIt: "Import", dryRun: "Check only", imported: "Imported", kind: "kind", members: "members", lead: "lead",
    linkedLogin: "login", schedules: "On-call schedules (shifts)", policies: "Escalation policies", rotation: "rotation",
    steps: "steps", thenWait: "then wait",
    addSchedule: "Add an on-call schedule", editSchedule: "Edit on-call schedule", scheduleId: "schedule id",
    noSchedules: "No on-call schedules yet.", noPolicies: "No escalation policies yet: alerts page nobody.",
    layer: "layer (the highest with somebody on call wins)", handoffAt: "first hand-off (your local time)",
    shiftHours: "shift length (hours)", participants: "people, in turn order", addPerson: "+ person",
    activeFrom: "only from (optional)", activeUntil: "only until (optional)",
    addRotation: "+ rotation", removeIt: "Remove", addPolicy: "Add an escalation policy", editPolicy: "Edit escalation policy",
    policyId: "policy id", anyTierPolicy: "any tier (fallback)", step: "step", targets: "page whom (Ctrl-click for several)",
    waitMinutes: "then wait for an acknowledgement (minutes)", addStep: "+ step", repeatChain: "repeat the whole chain (times)",
    ackRenotify: "acknowledged but unresolved: page again after (minutes, 0 = never)",
    reminderMinutes: "remind every (minutes, 0 = never)", whoeverOnDuty: "(whoever is on duty)", wholeTeam: "(the whole team)",
    deleteIt: "Delete", confirmDelete: "Delete for good", deleted: "deleted",
    // phone
    phoneTitle: "Staff phones (demo notification sink)", noPhone: "No messages yet.", ackLink: "Acknowledge (link)",
    resolveLink: "Resolve (link)", to: "to", phoneNote: "What on-call sent to staff phones, with the signed links in each message.",
    // dead letters
    deadTitle: "Rejected messages", topic: "topic", receivedAt: "received", detail: "detail", noDead: "No rejected messages.",
    // KPIs
    threshold: "threshold", trendUp: "up from the previous period", trendDown: "down from the previous period",
    trendFlat: "same as the previous period", trendWorse: "worse", trendBetter: "better", noSample: "no data", last30: "last 30 days",
  },
  zh: {
    app: "Steward 监控中心", skip: "跳到告警", login: "登录", logout: "退出", username: "用户名", password: "密码",
    community: "小区", all: "全部", alerts: "告警", orders: "未关闭工单", noAlerts: "没有符合条件的告警。",
    noOrders: "没有未关闭的工单。", kpis: "指标", acknowledge: "确认", resolve: "解决", details: "详情",
    comment: "添加备注", note: "说明", close: "关闭", opened: "发生于", age: "已持续", ackDue: "确认剩余",
    ackOverdue: "确认已超时", acknowledgedBy: "确认人", building: "楼栋", devices: "设备", condition: "类型",
    timeline: "时间线", comments: "备注", residents: "住户", masked: "已按角色脱敏", noComments: "暂无备注。",
    live: "实时", connecting: "连接中…", reconnecting: "重新连接中…", stopped: "实时连接已停止",
    tier1: "一级 生命安全", tier2: "二级 紧急", tier3: "三级 一般", open: "待确认", acknowledged: "已确认",
    resolved: "已解决", assignee: "处理人", rating: "评分 (1-5)", reason: "原因", confirm: "提交", cancelForm: "返回",
    due: "期限", overdue: "已超时", more: "条未显示", phone: "电话", emergency: "紧急联系人", careNotes: "照护备注",
    saved: "已完成。", workOrder: "工单", loggedOut: "已退出。", sessionEnded: "登录已失效，请重新登录。",
    navBoard: "实时看板", navHistory: "历史", navDevices: "设备", navPeople: "人员", navPhone: "手机",
    navDead: "死信", kiosk: "大屏模式", exitKiosk: "退出大屏",
    tier: "级别", family: "设备类别", status: "状态", since: "发生时间", search: "搜索", anyTier: "全部级别",
    anyFamily: "全部类别", anyBuilding: "全部楼栋", activeStatus: "待确认 + 已确认", anyStatus: "全部状态",
    anyTime: "全部时间", last1h: "最近 1 小时", last24h: "最近 24 小时", last7d: "最近 7 天", last30d: "最近 30 天",
    elevator: "电梯", water: "供水", access: "门禁", elderly: "独居老人", apply: "应用", selectAll: "全选",
    ackSelected: "批量确认", selected: "已选", bulkDone: "已确认 {n} 条", bulkFailed: "{n} 条无法确认",
    resolution: "处理结论", confirmed: "属实（真实事件）", false_alarm: "误报", duplicate: "重复",
    duplicateOf: "重复于告警 #", reasonRequired: "原因（一级告警必填）", assign: "指派", assignTo: "指派给",
    escalate: "升级", toTier: "升级到", pickStaff: "选择人员", onDuty: "值班中", offDuty: "非值班", load: "在办工单",
    resolvedAs: "处理结论",
    notify: "一级告警声音与通知", enableNotify: "开启浏览器通知", muteShift: "本班静音", unmute: "打开声音",
    muted: "静音至", newLevel1: "新的一级告警", notifyBlocked: "通知已被浏览器阻止",
    notifyBlockedHelp: "浏览器阻止了 Steward 的通知：请在网站设置（地址栏的锁形图标）中允许",
    historyAlerts: "告警历史", noHistoryAlerts: "还没有已解决的告警。", noHistoryOrders: "还没有工单。", historyOrders: "工单历史", state: "状态", created: "创建于",
    tree: "小区、楼栋、住户", online: "在线", offline: "离线", never_seen: "从未上线", battery: "电量",
    openIncidents: "未关闭告警", lastSeen: "最后上报", telemetry: "遥测曲线（5 分钟汇总）", telemetryHourly: "遥测曲线（每小时）", noData: "此时段没有数据。",
    chooseDevice: "请在左侧选择设备。", reading: "读数", period: "时段", devicesCount: "台设备", unitsOf: "户",
    unreachable: "无法连接服务器：请检查网络；实时连接会自动重试",
    httpError: "服务器返回了错误页面，状态码",
    progressNote: "跟进记录（现场情况、处理进展）", addNote: "添加跟进",
    level1Hidden: "有 {n} 条未确认的一级告警被筛选隐藏：点此显示全部",
    edit: "修改", language: "语言", showDevice: "查看设备状态和遥测曲线",
    title: "名称", inactive: "已停用", deactivate: "停用", activate: "恢复启用", deactivated: "已停用", activated: "已恢复启用",
    staff: "员工", teams: "班组", team: "班组", role: "岗位", skills: "技能", contacts: "联系方式",
    addStaff: "新增员工", addTeam: "新增班组", teamId: "班组编号", wholeCommunity: "负责楼栋（不选：整个小区）", save: "保存", staffId: "员工编号", name: "姓名", importRoster: "导入名册（TOML）",
    importIt: "导入", dryRun: "仅检查", imported: "已导入", kind: "类型", members: "人数", lead: "负责人",
    linkedLogin: "登录账号", schedules: "值班表（班次）", policies: "升级策略", rotation: "轮班", steps: "步骤", thenWait: "之后等待",
    addSchedule: "新增值班表", editSchedule: "修改值班表", scheduleId: "值班表编号",
    noSchedules: "还没有值班表。", noPolicies: "还没有升级策略：告警不会通知任何人。",
    layer: "层级（有人值班的最高层级优先）", handoffAt: "首次交班时间（本地时间）", shiftHours: "每班时长（小时）",
    participants: "轮值人员（按轮换顺序）", addPerson: "+ 人员", addRotation: "+ 轮班", removeIt: "移除",
    activeFrom: "生效起（可不填）", activeUntil: "生效止（可不填）",
    addPolicy: "新增升级策略", editPolicy: "修改升级策略", policyId: "策略编号", anyTierPolicy: "任何级别（兜底）", step: "步骤",
    targets: "通知谁（按住 Ctrl 可多选）", waitMinutes: "之后等待确认（分钟）", addStep: "+ 步骤", repeatChain: "整条链重复次数",
    ackRenotify: "已确认但未解决：多久后再通知（分钟，0 = 不再通知）", reminderMinutes: "提醒间隔（分钟，0 = 不提醒）",
    whoeverOnDuty: "（当班者）", wholeTeam: "（全班组）", deleteIt: "删除", confirmDelete: "确定删除", deleted: "已删除",
    phoneTitle: "员工手机（演示通知接收端）", noPhone: "暂无消息。", ackLink: "确认（链接）", resolveLink: "解决（链接）",
    to: "发给", phoneNote: "值班系统发到员工手机的消息，每条带签名的操作链接。",
    deadTitle: "被拒收的消息", topic: "主题", receivedAt: "接收时间", detail: "详情", noDead: "没有被拒收的消息。",
    threshold: "阈值", trendUp: "较上期上升", trendDown: "较上期下降", trendFlat: "与上期持平", trendWorse: "变差", trendBetter: "变好", noSample: "无数据",
    last30: "最近 30 天",
  },
};

export const ACTION_TEXT = {
  en: { dispatch: "Dispatch", reassign: "Reassign", accept: "Accept", arrive: "Arrive", complete: "Complete",
        verify: "Verify", reject: "Reject", return_visit: "Return visit", close: "Close", cancel: "Cancel" },
  zh: { dispatch: "派单", reassign: "改派", accept: "接单", arrive: "到场", complete: "完工", verify: "验收",
        reject: "退回", return_visit: "回访", close: "关闭", cancel: "取消" },
};

export const STATE_TEXT = {
  en: { created: "created", dispatched: "dispatched", accepted: "accepted", on_site: "on site", completed: "completed",
        verified: "verified", return_visit_done: "return visit done", closed: "closed", cancelled: "cancelled" },
  zh: { created: "已创建", dispatched: "已派单", accepted: "已接单", on_site: "已到场", completed: "已完工",
        verified: "已验收", return_visit_done: "已回访", closed: "已关闭", cancelled: "已取消" },
};

// Condition names come from the server (domain/conditions.py, in /ui/config.json), the one table the on-call
// messages use too; fault.N are GB/T 24476 lift faults.
export function conditionName(lang, condition, table) {
  const c = String(condition || "");
  const locale = lang === "zh" ? "zh-CN" : "en";
  if (!table) return c.replaceAll("_", " ");
  if (c.startsWith("fault.")) {
    const code = c.slice(6);
    return table.lift_fault_prefix[locale] + ((table.lift_faults[locale] || {})[code] || code);
  }
  const names = table.names[locale] || {};
  return names[c] || names[c.split(".")[0]] || c.replaceAll("_", " ");
}

export const TIMELINE_TEXT = {
  en: { opened: "opened", updated: "updated", escalated: "escalated", cleared: "condition cleared", reopened: "reopened",
        acknowledged: "acknowledged", resolved: "resolved", commented: "comment", assigned: "assigned",
        created: "created", dispatch: "dispatched", dispatch_failed: "dispatch failed", reassign: "reassigned",
        accept: "accepted", arrive: "arrived on site", complete: "completed", verify: "verified", reject: "rejected",
        return_visit: "return visit", close: "closed", cancel: "cancelled", note: "note",
        condition_cleared: "condition cleared", condition_returned: "condition returned", repeat_failure: "repeat failure",
        failed_again: "failed again", tier_raised: "tier raised", work_order_created: "work order created" },
  zh: { opened: "发生", updated: "更新", escalated: "升级", cleared: "状况解除", reopened: "再次发生", acknowledged: "确认",
        resolved: "解决", commented: "备注", assigned: "指派", created: "创建", dispatch: "派单", dispatch_failed: "派单失败",
        reassign: "改派", accept: "接单", arrive: "到场", complete: "完工", verify: "验收", reject: "退回", return_visit: "回访",
        close: "关闭", cancel: "取消", note: "跟进", condition_cleared: "状况解除", condition_returned: "状况再现",
        repeat_failure: "重复故障", failed_again: "再次故障", tier_raised: "级别提高", work_order_created: "生成工单" },
};

export const KPI_TEXT = {
  en: { response_time_mean_s: "Mean response time", response_time_p90_s: "Response time (90th pct.)",
        completion_24h_rate: "Completed within 24 h", overdue_count: "Overdue orders", first_time_fix_rate: "First-time fix",
        repeat_failure_rate: "Repeat failures", satisfaction: "Satisfaction", alerts_per_1000_devices: "Alerts per 1,000 devices",
        false_alarm_rate: "False alarms" },
  zh: { response_time_mean_s: "平均响应时间", response_time_p90_s: "响应时间（90 分位）", completion_24h_rate: "24 小时完成率",
        overdue_count: "超时工单", first_time_fix_rate: "一次修复率", repeat_failure_rate: "重复故障率", satisfaction: "满意度",
        alerts_per_1000_devices: "每千台设备告警数", false_alarm_rate: "误报率" },
};

// What each KPI counts, for the tooltip: English comes from the server (workorders/kpis.py DEFINITIONS).
export const KPI_DEFINITION_ZH = {
  response_time_mean_s: "本期创建且已接单的工单，从创建到处理人首次接单的平均时长",
  response_time_p90_s: "同上响应时长的 90 分位数",
  completion_24h_rate: "本期创建（未取消）的工单中，创建后 24 小时内完工的比例；未满 24 小时且未完工的不计",
  overdue_count: "本期创建、至今至少有一个时限已超（超时完成或超时未完成）的工单数",
  first_time_fix_rate: "本期创建且已验收的工单中，验收时未被退回返工的比例",
  repeat_failure_rate: "本期创建的故障工单中，同一设备（或楼栋）同一故障在重复窗口（默认 7 天）内再次发生的比例",
  satisfaction: "本期创建工单的回访评分平均值（1-5）",
  alerts_per_1000_devices: "本期新发生的告警数，按小区每千台在用设备计；阈值按 30 天折算到本期",
  false_alarm_rate: "本期新发生的告警中，被处理人认定为误报的比例",
};

export const ROLE_TEXT = {
  en: { operator: "operator", technician: "technician", guard: "guard", steward: "care steward", cleaner: "cleaner",
        team_lead: "team lead", supervisor: "supervisor", manager: "manager", admin: "administrator" },
  zh: { operator: "客服", technician: "技术员", guard: "保安", steward: "管家", cleaner: "保洁", team_lead: "班组长",
        supervisor: "主管", manager: "经理", admin: "管理员" },
};

export const TEAM_TEXT = {
  en: { engineering: "engineering", security: "security", cleaning: "cleaning", elderly_care: "elderly care",
        customer_service: "customer service", management: "management" },
  zh: { engineering: "工程", security: "秩序维护", cleaning: "保洁", elderly_care: "长者关怀", customer_service: "客服",
        management: "管理" },
};

// Words the People, Devices and Dead-letters views show for codes: contact channels, roster import counts,
// the gateway's reasons for refusing a message (gateway/validate.py), units of time.
export const CODE_TEXT = {
  en: {
    channel: { email: "e-mail", webhook: "SMS/IM gateway", push: "app push" },
    counts: { teams: "teams", staff: "staff", contacts: "contacts", schedules: "schedules", policies: "policies",
              maintenance: "maintenance windows", places: "places", users: "logins" },
    rejected: { bad_topic: "bad topic", unknown_device_type: "unknown device type", unknown_stream: "unknown stream",
                oversized: "too large", malformed_json: "not JSON", invalid_payload: "invalid content",
                unknown_type: "unknown message type", future_timestamp: "timestamp in the future",
                device_mismatch: "device does not match its topic", unknown_device: "unregistered device",
                internal_error: "server error" },
    rejectedHelp: {
      bad_topic: "the topic is not community/<community>/<family>/<device>/<stream>: check the device's topic setting",
      unknown_device_type: "the topic's family is not lift, water, doors or elderly",
      unknown_stream: "this device family has no such stream", oversized: "the message is over the 64 KiB limit",
      malformed_json: "the message body is not valid JSON",
      invalid_payload: "a field is missing, of the wrong kind or out of range (the gateway's words below)",
      unknown_type: "this stream has no such message type",
      future_timestamp: "the timestamp is more than 5 minutes ahead of the server: check the device's clock",
      device_mismatch: "the device id in the body is not the one in the topic",
      unknown_device: "the device is not registered, retired, or of another community: register it first",
      internal_error: "the server failed on this message: see the server log" },
    gatewaySaid: "gateway: ",
    hours: "h", minutes: "min",
    pages: "Paged by on-call", noPages: "Nobody paged yet.", work_orders: "Work orders",
    page: { step: "step {n}", reminder: "reminder (step {n})", ack_renotify: "re-notified after acknowledgement" },
    pageStatus: { sent: "delivered", pending: "sending", failed: "not delivered" },
  },
  zh: {
    channel: { email: "邮件", webhook: "短信/IM 网关", push: "App 推送" },
    counts: { teams: "班组", staff: "员工", contacts: "联系方式", schedules: "值班表", policies: "升级策略",
              maintenance: "维护时段", places: "地点", users: "登录账号" },
    rejected: { bad_topic: "主题格式错误", unknown_device_type: "未知设备类别", unknown_stream: "未知数据流",
                oversized: "消息过大", malformed_json: "不是合法 JSON", invalid_payload: "无效载荷",
                unknown_type: "未知消息类型", future_timestamp: "时间戳在未来", device_mismatch: "设备与主题不符",
                unknown_device: "未登记的设备", internal_error: "服务器错误" },
    rejectedHelp: {
      bad_topic: "主题不是 community/小区/类别/设备/数据流 的格式：检查设备的主题配置", unknown_device_type: "主题中的类别不是电梯、供水、门禁或独居老人",
      unknown_stream: "该设备类别没有这个数据流", oversized: "消息超过 64 KiB 上限", malformed_json: "消息体不是合法的 JSON",
      invalid_payload: "载荷字段缺失、类型不对或超出范围（网关原文见下）", unknown_type: "该数据流没有这种消息类型",
      future_timestamp: "时间戳比服务器快 5 分钟以上：检查设备时钟", device_mismatch: "消息体里的设备编号与主题中的不一致",
      unknown_device: "设备未登记、已停用或属于其他小区：请先登记", internal_error: "服务器处理这条消息时出错：见服务器日志" },
    gatewaySaid: "网关原文：",
    hours: "小时", minutes: "分钟",
    pages: "值班通知记录", noPages: "尚未通知任何人。", work_orders: "工单",
    page: { step: "第 {n} 步", reminder: "提醒（第 {n} 步）", ack_renotify: "确认后未解决，再次通知" },
    pageStatus: { sent: "已送达", pending: "发送中", failed: "发送失败" },
  },
};
