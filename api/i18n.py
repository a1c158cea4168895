"""Error messages in the caller's language: ``Accept-Language: zh-CN`` gets Chinese.

A pure ASGI middleware rewrites the one error shape (``{"error": {"code",
"message", "field"}}``) of JSON answers with status >= 400: the message
becomes the code's Chinese sentence, followed by the Chinese of the detail
when it is one the console shows (Level 1 resolution, transitions, staff,
rosters), else by the English detail in brackets (technical details, e.g. a
validation message naming a field, stay exact). ``code`` and ``field`` never
change: clients branch on them. Everything else passes through untouched
(the live stream included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CODES_ZH = {
    "not_authenticated": "请先登录",
    "invalid_token": "登录已失效，请重新登录",
    "invalid_credentials": "用户名或密码错误",
    "forbidden": "当前角色无权执行此操作",
    "not_found": "未找到（或不属于您可见的小区）",
    "conflict": "与已有数据冲突",
    "illegal_transition": "当前状态下不能执行此操作",
    "not_assignee": "这张工单不是您的",
    "not_linked": "此登录账号未关联员工",
    "invalid": "输入有误",
    "invalid_roster": "名册文件有误",
    "too_many_attempts": "尝试次数过多，请稍后再试",
    "unavailable": "服务暂时不可用",
    "internal_error": "服务器内部错误，详情见服务器日志",
    "method_not_allowed": "不支持此请求方法",
    "bad_signature": "签名无效",
    "link_malformed": "链接格式有误",
    "link_forged": "链接签名无效",
    "link_expired": "链接已过期",
    "link_replayed": "链接已使用过",
    "link_unknown": "链接无效",
    "link_revoked": "链接已失效：接收人已停用",
}
STATUS_ZH = {"open": "待确认", "acknowledged": "已确认", "resolved": "已解决", "created": "已创建",
             "dispatched": "已派单", "accepted": "已接单", "on_site": "已到场", "completed": "已完工",
             "verified": "已验收", "return_visit_done": "已回访", "closed": "已关闭", "cancelled": "已取消"}
ACTION_ZH = {"acknowledge": "确认", "resolve": "解决", "assign": "指派", "escalate": "升级", "dispatch": "派单",
             "reassign": "改派", "accept": "接单", "arrive": "到场", "complete": "完工", "verify": "验收",
             "reject": "退回", "return_visit": "回访", "close": "关闭", "cancel": "取消"}
DETAILS_ZH: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"a Level 1 alert needs the reason for its resolution"), lambda m: "一级告警必须填写处理原因"),
    (re.compile(r"a Level 1 alert is resolved as false_alarm, confirmed or duplicate"),
     lambda m: "一级告警须选择处理结论：误报、属实或重复"),
    (re.compile(r"a duplicate names the alert it repeats"), lambda m: "重复告警须填写原告警编号"),
    (re.compile(r"cannot (\w+) (?:alert|a work order|work order) ?(\d*):? (?:it|that) is (\w+)"),
     lambda m: f"{('告警/工单 ' + m.group(2) + ' ') if m.group(2) else ''}当前为“{STATUS_ZH.get(m.group(3), m.group(3))}”，"
               f"不能{ACTION_ZH.get(m.group(1), m.group(1))}"),
    (re.compile(r"cannot (\w+) a work order that is (\w+)"),
     lambda m: f"工单当前为“{STATUS_ZH.get(m.group(2), m.group(2))}”，不能{ACTION_ZH.get(m.group(1), m.group(1))}"),
    (re.compile(r"Alert (\d+) is already (\w+)\."), lambda m: f"告警 {m.group(1)} 当前为“{STATUS_ZH.get(m.group(2), m.group(2))}”"),
    (re.compile(r"alert (\d+) does not exist"), lambda m: f"告警 {m.group(1)} 不存在"),
    (re.compile(r"work order (\d+) does not exist"), lambda m: f"工单 {m.group(1)} 不存在"),
    (re.compile(r"no staff member '([^']+)' in community (\S+)"), lambda m: f"小区 {m.group(2)} 没有员工 {m.group(1)}"),
    (re.compile(r"work order (\d+) is assigned to (.+); it must be reassigned before somebody else works it"),
     lambda m: f"工单 {m.group(1)} 的处理人是 {m.group(2)}，须先改派才能由他人处理"),
    (re.compile(r"login '([^']+)' is linked to no staff member"),
     lambda m: f"账号 {m.group(1)} 须由管理员在“人员”页关联到本人后，才能接单、到场和完工"),
    (re.compile(r"alert (\d+) is already assigned to (\S+)"), lambda m: f"告警 {m.group(1)} 已指派给 {m.group(2)}"),
    (re.compile(r"the (\w+) role may not .*"), lambda m: f"“{m.group(1)}”角色无此权限"),
    (re.compile(r"line (\d+): (\$\S+): no (\w+) '([^']+)' in this file or in the database"),
     lambda m: f"第 {m.group(1)} 行 {m.group(2)}：文件和数据库中都没有 {m.group(3)} “{m.group(4)}”"),
    (re.compile(r"line (\d+): (.*)"), lambda m: f"第 {m.group(1)} 行：{m.group(2)}"),
    (re.compile(r"escalation raises the tier.*"), lambda m: "升级只能提高级别（级别数字变小）"),
    (re.compile(r"the token or API key is invalid, expired or revoked"), lambda m: "令牌无效、已过期或已撤销"),
    (re.compile(r"^log in \(POST /auth/token\)"),
     lambda m: "登录（POST /auth/token）后以 Authorization: Bearer 发送令牌，或发送 X-API-Key"),
    (re.compile(r"incorrect username or password", re.I), lambda m: "用户名或密码错误"),
    (re.compile(r"schedule '([^']+)' is paged by escalation policy (.+); change those policies first"),
     lambda m: f"值班表 {m.group(1)} 仍被升级策略 {m.group(2)} 使用，请先修改这些策略"),
    (re.compile(r"community (\S+) already has policy '([^']+)' for tier (\w+)"),
     lambda m: f"小区 {m.group(1)} 的{TIER_ZH.get(m.group(3), m.group(3))}已有升级策略 {m.group(2)}，请修改那一条"),
    (re.compile(r"(schedule|policy) '([^']+)' already exists"),
     lambda m: f"{'值班表' if m.group(1) == 'schedule' else '升级策略'}编号 {m.group(2)} 已存在"),
    (re.compile(r"(body\.\S+): '([^']+)' is not (active staff|a schedule|an active team) of community (\S+)"),
     lambda m: f"{m.group(1)}：{m.group(2)} 不是小区 {m.group(4)} 的"
               f"{ {'active staff': '在职员工', 'a schedule': '值班表', 'an active team': '在用班组'}[m.group(3)]}"),
]
TIER_ZH = {"1": "一级告警", "2": "二级告警", "3": "三级告警", "any": "通用（任何级别）"}


def prefers_chinese(accept_language: str) -> bool:
    """True when the first language the client names is Chinese (zh, zh-CN, zh-Hans...)."""
    best, best_q = "", -1.0
    for part in accept_language.split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang and q > best_q:
            best, best_q = lang.lower(), q
    return best.startswith("zh")


def to_chinese(code: str, message: str) -> str:
    head = CODES_ZH.get(code, "请求失败")
    for pattern, render in DETAILS_ZH:
        found = pattern.search(message)
        if found:
            return f"{head}：{render(found)}"
    return f"{head}（{message}）" if message else head


class LocalizedErrors:
    """ASGI middleware: Chinese error messages for clients that prefer Chinese."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not prefers_chinese(headers.get(b"accept-language", b"").decode("latin-1")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if message["status"] >= 400 and content_type.startswith(b"application/json"):
                    held = message
                    return
                await send(message)
                return
            if held is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            try:
                doc = json.loads(body)
                error = doc["error"]
                error["message"] = to_chinese(str(error.get("code", "")), str(error.get("message", "")))
                body = json.dumps(doc, ensure_ascii=False).encode()
            except (ValueError, KeyError, TypeError):
                pass
            start_headers = [(k, v) for k, v in held.get("headers") or [] if k.lower() != b"content-length"]
            start_headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": start_headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)
