"""Work orders: the closed loop 接单 → 派单 → 跟进 → 验收 → 回访, its SLA clocks and KPIs."""
