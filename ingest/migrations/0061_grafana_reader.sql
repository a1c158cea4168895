-- The managers' Grafana (docker-compose.yml) reads through `grafana_reader`,
-- created by deploy/timescaledb/10-grafana-reader.sh. It may read what the
-- dashboards show and nothing else: no users, tokens, residents or audit log.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        GRANT SELECT ON devices, events, events_5m, incidents, work_orders, work_order_events, work_order_daily,
                        places TO grafana_reader;
        GRANT SELECT (received_at, reason, community_id) ON dead_letters TO grafana_reader;
    END IF;
END $$;
