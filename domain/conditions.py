"""What each detector condition is called, in Chinese and English, for every place a person reads one.

The detectors' incident titles are English sentences with details; staff read
the condition's name in their own language instead: the console (served to
the page by ``/ui/config.json``), on-call messages (`oncall.templates`) and
any report. ``fault.N`` is a GB/T 24476 lift fault.
"""

from __future__ import annotations

NAMES: dict[str, dict[str, str]] = {
    "en": {
        "sos": "SOS one-key call", "fall": "Fall detected", "inactivity": "No activity (elderly resident)",
        "night_wandering": "Night wandering", "long_bathroom_stay": "Long bathroom stay at night",
        "entrapment": "Passenger trapped", "burst": "Pipe burst", "water_leak": "Water leak",
        "continuous_flow": "Continuous flow (leak)", "night_flow": "Night flow rising",
        "supply_interruption": "Water supply interrupted", "pressure_out_of_band": "Water pressure out of range",
        "pump_fault": "Pump fault", "tank_low": "Tank level low", "tank_high": "Tank level high",
        "door_forced": "Door forced", "door_held_open": "Door held open", "fire_door_propped": "Fire door propped open",
        "repeated_denied": "Repeated denied credentials", "tamper": "Reader tamper",
        "unusual_hour_access": "Access at an unusual hour", "tailgating": "Tailgating", "offline": "Device offline",
        "battery_low": "Battery low", "sensor_stuck": "Sensor stuck", "door_wear": "Lift door wear",
        "vibration_trend": "Lift vibration rising", "lift_alarm_presses": "Repeated alarm presses",
    },
    "zh-CN": {
        "sos": "一键呼叫 SOS", "fall": "跌倒报警", "inactivity": "长时间无活动（独居老人）", "night_wandering": "夜间外出",
        "long_bathroom_stay": "夜间如厕时间过长", "entrapment": "电梯困人", "burst": "爆管", "water_leak": "漏水",
        "continuous_flow": "持续用水（疑似漏水）", "night_flow": "夜间流量升高", "supply_interruption": "停水",
        "pressure_out_of_band": "水压异常", "pump_fault": "水泵故障", "tank_low": "水箱液位过低", "tank_high": "水箱液位过高",
        "door_forced": "门被强行打开", "door_held_open": "门长时间未关", "fire_door_propped": "消防门被撑开",
        "repeated_denied": "多次刷卡失败", "tamper": "读卡器被拆", "unusual_hour_access": "非常规时段通行",
        "tailgating": "尾随进入", "offline": "设备离线", "battery_low": "电量低", "sensor_stuck": "传感器读数卡滞",
        "door_wear": "电梯门磨损", "vibration_trend": "电梯振动上升", "lift_alarm_presses": "多次按下警铃",
    },
}
LIFT_FAULTS: dict[str, dict[int, str]] = {
    "en": {1: "overrun at top", 2: "overrun at bottom", 3: "overspeed", 4: "door opens while running",
           5: "car moves with door open", 6: "stopped outside door zone", 7: "trapped at floor level",
           8: "trapped between floors", 9: "power cut", 10: "safety circuit open", 11: "door fails to open",
           12: "door fails to close", 13: "door-lock circuit open", 14: "stuck landing button", 15: "abnormal speed",
           21: "alarm button pressed"},
    "zh-CN": {1: "冲顶", 2: "蹲底", 3: "超速", 4: "运行中开门", 5: "开门走车", 6: "门区外停梯", 7: "平层关人",
              8: "非平层关人", 9: "停电", 10: "安全回路断路", 11: "开门故障", 12: "关门故障", 13: "门锁回路断路",
              14: "层站按钮粘连", 15: "速度异常", 21: "乘客按下警铃"},
}
LIFT_FAULT_PREFIX = {"en": "Lift fault: ", "zh-CN": "电梯故障："}


def condition_name(locale: str, condition: str | None) -> str | None:
    """The condition's name in ``locale`` (``zh-CN`` or ``en``), or None when it has none."""
    lang = "zh-CN" if str(locale).lower().startswith("zh") else "en"
    text = str(condition or "")
    if text.startswith("fault."):
        code = text[6:]
        name = LIFT_FAULTS[lang].get(int(code)) if code.isdigit() else None
        return LIFT_FAULT_PREFIX[lang] + (name or code)
    return NAMES[lang].get(text) or NAMES[lang].get(text.split(".")[0])


def for_the_page() -> dict[str, object]:
    """Both tables as JSON for the console (lift faults keyed by string)."""
    return {"names": NAMES, "lift_faults": {k: {str(c): n for c, n in v.items()} for k, v in LIFT_FAULTS.items()},
            "lift_fault_prefix": LIFT_FAULT_PREFIX}
