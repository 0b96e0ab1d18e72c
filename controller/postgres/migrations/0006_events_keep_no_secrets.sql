-- The event log keeps no secrets (see controller.Event). New events are
-- written without them (eventredact.go); this takes them out of the events
-- written before. Env names stay and each value becomes '(redacted)'
-- (controller.RedactedValue); a route's certificate loses its private key.

UPDATE events SET data = jsonb_set(data, '{env}', (
        SELECT coalesce(jsonb_object_agg(k, '"(redacted)"'::jsonb), '{}'::jsonb)
        FROM jsonb_object_keys(data->'env') AS k))
    WHERE object_type IN ('release', 'resource') AND jsonb_typeof(data->'env') = 'object';

UPDATE events SET data = jsonb_set(data, '{processes}', (
        SELECT coalesce(jsonb_object_agg(name, CASE WHEN jsonb_typeof(pt->'env') = 'object'
            THEN jsonb_set(pt, '{env}', (
                SELECT coalesce(jsonb_object_agg(k, '"(redacted)"'::jsonb), '{}'::jsonb)
                FROM jsonb_object_keys(pt->'env') AS k))
            ELSE pt END), '{}'::jsonb)
        FROM jsonb_each(data->'processes') AS p(name, pt)))
    WHERE object_type = 'release' AND jsonb_typeof(data->'processes') = 'object';

UPDATE events SET data = data #- '{certificate,key}'
    WHERE object_type = 'route' AND jsonb_typeof(data->'certificate') = 'object' AND data->'certificate' ? 'key';

-- Events older than the controller's retention are deleted (EventRepo.Prune,
-- by age: hence the index). For each app ('' for events of no app) and
-- object type, events_pruned keeps the newest id deleted, so that a stream
-- resumed from before it is refused rather than silently missing events.
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE events_pruned (
    app_id      text NOT NULL,
    object_type text NOT NULL,
    through     bigint NOT NULL,
    PRIMARY KEY (app_id, object_type)
);
