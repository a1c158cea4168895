"""Why a work order went to whom, as codes with parameters, and how each reads in Chinese and English.

Dispatch stores its reason as a list of ``{"code", "params"}`` (in the order's
timeline, next to the English sentence it renders to), so every reader shows
it in their own language with names, not ids: the console renders these
templates (served by ``/ui/config.json``) with its names of people, places,
teams and conditions; ``render`` is the same rule here (ids as given unless
a namer is passed). A reason reads "<team rule>; <person>: <note>, <note>…"
or "<team rule>; <nobody>".

Parameters: ``team`` (a team kind), ``condition``, ``family`` (a device
family), ``building`` (a place id), ``staff`` / ``actor`` (staff ids),
``skills`` (a list of skills: device families or conditions), ``count``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from domain.conditions import condition_name


class Why(msgspec.Struct, frozen=True):
    """One part of a reason: a code of ``TEMPLATES`` and its parameters."""

    code: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "auto_dispatch": "auto-dispatch",
        "team_requested": "team {team} requested",
        "team_by_condition": "condition {condition} goes to {team}",
        "team_by_family": "work on {family} goes to {team}",
        "team_default": "no rule for this work: engineering by default",
        "nobody_active": "nobody active in a {team} team: left undispatched",
        "chosen": "{staff}",
        "at_capacity_all": "at capacity, but everyone is",
        "has_capacity": "has capacity",
        "on_duty": "on duty",
        "off_shift": "off shift, but nobody on shift can take it",
        "covers_building": "covers building {building}",
        "covers_community": "covers the whole community",
        "nobody_covers": "nobody covers building {building}",
        "skill": "skill {skills}",
        "no_skill": "no matching skill",
        "open_orders": "{count} open order(s)",
        "dispatched_by": "dispatched by {actor}",
    },
    "zh-CN": {
        "auto_dispatch": "自动派单",
        "team_requested": "指定由{team}处理",
        "team_by_condition": "“{condition}”由{team}处理",
        "team_by_family": "{family}设备由{team}处理",
        "team_default": "没有对应规则：默认由工程处理",
        "nobody_active": "{team}班组没有在岗人员：暂未派单",
        "chosen": "{staff}",
        "at_capacity_all": "工单已满，但人人都已满",
        "has_capacity": "尚有余量",
        "on_duty": "正在值班",
        "off_shift": "不在班，但在班的人都接不了",
        "covers_building": "负责{building}",
        "covers_community": "负责全小区",
        "nobody_covers": "没有人负责{building}",
        "skill": "具备技能：{skills}",
        "no_skill": "没有匹配的技能",
        "open_orders": "手上 {count} 张未完成工单",
        "dispatched_by": "由{actor}派单",
    },
}
# How the parts join: "<team>; <staff>: <note>, <note>".
JOINERS: dict[str, dict[str, str]] = {"en": {"part": "; ", "person": ": ", "note": ", ", "list": ", "},
                                      "zh-CN": {"part": "；", "person": "：", "note": "，", "list": "、"}}
# Team kinds and device families, for ``render``'s default namer (the console has its own tables).
TEAM_NAMES: dict[str, dict[str, str]] = {
    "en": {},
    "zh-CN": {"engineering": "工程", "security": "秩序维护", "cleaning": "保洁", "elderly_care": "长者关怀",
              "customer_service": "客服", "management": "管理"},
}
FAMILY_NAMES: dict[str, dict[str, str]] = {
    "en": {},  # the stored English sentence keeps the ids it always had
    "zh-CN": {"elevator": "电梯", "water": "供水", "access": "门禁", "elderly": "独居老人"},
}

Namer = Callable[[str, Any], str]  # (parameter name, value) -> text


def _lang(locale: str) -> str:
    return "zh-CN" if str(locale).lower().startswith("zh") else "en"


def default_namer(locale: str) -> Namer:
    lang = _lang(locale)

    def name(kind: str, value: Any) -> str:
        text = str(value)
        if kind == "team":
            return TEAM_NAMES[lang].get(text, text)
        if kind == "family":
            return FAMILY_NAMES[lang].get(text, text)
        if kind == "condition":
            return condition_name(lang, text) if lang != "en" and condition_name(lang, text) else text
        if kind == "skills":
            joined = [FAMILY_NAMES[lang].get(s) or (condition_name(lang, s) if lang != "en" else None) or s
                      for s in value]
            return JOINERS[lang]["list"].join(joined)
        return text

    return name


def render_one(why: Why | Mapping[str, Any], locale: str = "en", name: Namer | None = None) -> str:
    lang = _lang(locale)
    code, params = (why.code, why.params) if isinstance(why, Why) else (why["code"], why.get("params") or {})
    template = TEMPLATES[lang].get(code) or TEMPLATES["en"].get(code) or code
    namer = name or default_namer(lang)
    return template.format_map({k: namer(k, v) for k, v in params.items()})


def render(parts: Sequence[Why | Mapping[str, Any]], locale: str = "en", name: Namer | None = None) -> str:
    """A whole reason: the team rule, then the person (or nobody) and what counted for them."""
    lang = _lang(locale)
    j = JOINERS[lang]
    texts = [render_one(p, lang, name) for p in parts]
    codes = [p.code if isinstance(p, Why) else p["code"] for p in parts]
    if "chosen" in codes:
        at = codes.index("chosen")
        head = j["part"].join(texts[:at] + [texts[at]])
        notes = texts[at + 1:]
        return head + (j["person"] + j["note"].join(notes) if notes else "")
    return j["part"].join(texts)


def for_the_page() -> dict[str, object]:
    """The templates and joiners as JSON for the console."""
    return {"templates": TEMPLATES, "joiners": JOINERS}
