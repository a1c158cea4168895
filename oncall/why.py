"""Why a person is paged ("why you"), as codes with parameters, and how each reads in Chinese and English.

The escalation decision (pure) says why with ``Reason`` values: what fired
(a policy step, a reminder, a re-notify) and why this person (named in the
step, on call in a schedule, an override, a team member, the one who
acknowledged). They read in English as they always did (``str``: the stored
decision reasons and logs) and are stored with each message as codes, so
the message is rendered in the contact's language at send time
(``oncall.templates``) with names, not ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "step": "policy {policy} step {step}/{steps} (pass {pass}/{passes})",
        "reminder": "reminder {number}: tier {tier} alert still unacknowledged",
        "reminder_collapsed": "reminder {number}: tier {tier} alert still unacknowledged ({missed} missed while the "
                              "scheduler was down, collapsed into this one)",
        "ack_renotify": "acknowledged by {who} but unresolved (re-notify {number})",
        "named": "named in the policy step",
        "on_call": "on call for schedule {schedule} (layer {layer})",
        "override": "override #{override} of schedule {schedule}",
        "team_member": "member of team {team}",
        "acknowledged_it": "acknowledged it",
    },
    "zh-CN": {
        "step": "升级策略“{policy}”第 {step}/{steps} 步（第 {pass}/{passes} 轮）",
        "reminder": "第 {number} 次提醒：{tier}级告警仍无人确认",
        "reminder_collapsed": "第 {number} 次提醒：{tier}级告警仍无人确认（系统停机期间漏发的 {missed} 次提醒合并为本次）",
        "ack_renotify": "告警已确认但尚未解决（第 {number} 次提醒）",
        "named": "升级策略中指定了您",
        "on_call": "您正在“{schedule}”值班",
        "override": "您在“{schedule}”临时顶班（#{override}）",
        "team_member": "您是“{team}”班组成员",
        "acknowledged_it": "由您确认接单",
    },
}
_NAMES = {"policy": "policy_name", "schedule": "schedule_name", "team": "team_name", "who": "who_name"}


@dataclass(frozen=True)
class Reason:
    """One part of "why you". ``str()`` is its English sentence with ids (as stored reasons always read)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return render_one(self.to_json(), "en", names=False)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


def render_one(reason: Mapping[str, Any], locale: str, *, names: bool = True) -> str:
    """One reason in ``locale``; with ``names``, a ``<x>_name`` parameter stands in for the id ``x``."""
    lang = "zh-CN" if str(locale).lower().startswith("zh") else "en"
    params = dict(reason.get("params") or {})
    if names:
        for key, named in _NAMES.items():
            if params.get(named):
                params[key] = params[named]
    template = TEMPLATES[lang].get(reason.get("code", "")) or TEMPLATES["en"].get(reason.get("code", ""))
    if template is None:
        return str(reason.get("code", ""))
    try:
        return template.format_map(params)
    except (KeyError, IndexError, ValueError):
        return TEMPLATES["en"].get(reason.get("code", ""), "").format_map(_Lenient(params))


def render(reasons: Sequence[Mapping[str, Any]], locale: str) -> str:
    """What fired, then why this person: "<step>; <why you>"."""
    return ("；" if str(locale).lower().startswith("zh") else "; ").join(render_one(r, locale) for r in reasons)


class _Lenient(dict):  # a template missing a parameter still reads
    def __missing__(self, key: str) -> str:
        return "?"
