-- Feed the live stream from the two append-only histories: every row added to
-- incident_timeline (detector or staff) and to work_order_events becomes a
-- stream_changes row in the same transaction, and NOTIFY wakes the readers
-- when it commits. Columns are read through to_jsonb so this keeps working
-- when those tables gain columns.

CREATE OR REPLACE FUNCTION stream_from_incident_timeline() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    inc record;
    new_id bigint;
BEGIN
    SELECT community_id, status, tier, severity, title, building_id INTO inc FROM incidents WHERE id = NEW.incident_id;
    INSERT INTO stream_changes (community_id, entity, entity_id, change, data)
    VALUES (inc.community_id, 'alert', NEW.incident_id::text, NEW.kind,
            jsonb_build_object('at', NEW.at, 'actor', NEW.actor, 'status', inc.status, 'tier', inc.tier,
                               'severity', inc.severity, 'title', inc.title, 'building_id', inc.building_id))
    RETURNING id INTO new_id;
    PERFORM pg_notify('steward_changes', json_build_object('community_id', inc.community_id, 'id', new_id)::text);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS incident_timeline_to_stream ON incident_timeline;
CREATE TRIGGER incident_timeline_to_stream AFTER INSERT ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION stream_from_incident_timeline();

CREATE OR REPLACE FUNCTION stream_from_work_order_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb := to_jsonb(NEW);
    new_id bigint;
BEGIN
    INSERT INTO stream_changes (community_id, entity, entity_id, change, data)
    VALUES (ev ->> 'community_id', 'work_order', ev ->> 'work_order_id', ev ->> 'kind',
            jsonb_build_object('at', ev -> 'at', 'actor', ev -> 'actor', 'from_state', ev -> 'from_state',
                               'to_state', ev -> 'to_state'))
    RETURNING id INTO new_id;
    PERFORM pg_notify('steward_changes', json_build_object('community_id', ev ->> 'community_id', 'id', new_id)::text);
    RETURN NEW;
END $$;

DO $$
BEGIN
    IF to_regclass('work_order_events') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS work_order_events_to_stream ON work_order_events;
        CREATE TRIGGER work_order_events_to_stream AFTER INSERT ON work_order_events
            FOR EACH ROW EXECUTE FUNCTION stream_from_work_order_events();
    END IF;
END $$;
