"""Message templates in zh-CN and English, rendered at send time from stored parameters.

The stored parameters hold no secret: the action links are signed here, with
the link secret, from the nonces recorded when the step fired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from domain.conditions import condition_name
from oncall import why

TIER_LABELS = {
    "zh-CN": {1: "一级（红色）", 2: "二级（橙色）", 3: "三级（黄色）"},
    "en": {1: "Level 1 (red)", 2: "Level 2 (orange)", 3: "Level 3 (yellow)"},
}

SUBJECTS = {
    "zh-CN": {
        "step": "【{tier}告警】{title}",
        "reminder": "【提醒·未确认】{tier}告警：{title}",
        "ack_renotify": "【提醒·未解决】{tier}告警：{title}",
    },
    "en": {
        "step": "[{tier} alert] {title}",
        "reminder": "[Reminder: unacknowledged] {tier} alert: {title}",
        "ack_renotify": "[Reminder: unresolved] {tier} alert: {title}",
    },
}

BODIES = {
    "zh-CN": (
        "{subject}\n"
        "小区：{community_id}  楼栋：{building}\n"
        "类型：{condition}  设备：{devices}\n"
        "发生时间：{opened_at}\n"
        "事件编号：{incident_id}\n"
        "通知原因：{reason}\n\n"
        "确认接单：{ack_url}\n"
        "已处理完毕：{resolve_url}\n"
        "（链接仅可使用一次，{expires_at} 前有效）"
    ),
    "en": (
        "{subject}\n"
        "Community: {community_id}  Building: {building}\n"
        "Condition: {condition}  Devices: {devices}\n"
        "Opened at: {opened_at}\n"
        "Incident: {incident_id}\n"
        "Why you: {reason}\n\n"
        "Acknowledge: {ack_url}\n"
        "Resolve: {resolve_url}\n"
        "(each link works once, until {expires_at})"
    ),
}

BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    ack_url: str
    resolve_url: str


def render(locale: str, message: dict[str, Any], *, ack_url: str, resolve_url: str) -> Rendered:
    """Subject and text of one notification in ``locale`` (unknown locales fall back to zh-CN)."""
    if locale not in SUBJECTS:
        locale = "zh-CN"
    kind = message.get("kind", "step")
    tier = int(message.get("tier", 1))
    # Staff read the condition's name in their language (the detector's title is English) and places by name.
    named = condition_name(locale, message.get("condition"))
    title = message.get("title", "")
    if locale == "zh-CN" and named and not any("\u4e00" <= ch <= "\u9fff" for ch in title):
        title = named  # an English detector title: the condition's Chinese name instead
    subject = SUBJECTS[locale].get(kind, SUBJECTS[locale]["step"]).format(
        tier=TIER_LABELS[locale].get(tier, str(tier)), title=title
    )
    none = "—"
    text = BODIES[locale].format(
        subject=subject,
        community_id=message.get("community_name") or message.get("community_id", none),
        building=" ".join(x for x in (message.get("building_name") or message.get("building_id"),
                                      message.get("unit_name")) if x) or none,
        condition=named or message.get("condition") or none,
        devices=", ".join(message.get("device_names") or message.get("device_ids") or []) or none,
        opened_at=_local(message.get("opened_at")),
        incident_id=message.get("incident_id"),
        # "Why you" in the person's language from its codes; messages stored before them keep their sentence.
        reason=why.render(message["why"], locale) if message.get("why") else message.get("reason", ""),
        ack_url=ack_url,
        resolve_url=resolve_url,
        expires_at=_local(message.get("links_expire_at")),
    )
    return Rendered(subject=subject, text=text, ack_url=ack_url, resolve_url=resolve_url)


def _local(iso: str | None) -> str:
    """Staff read times in China Standard Time."""
    if not iso:
        return "—"
    return dt.datetime.fromisoformat(iso).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
