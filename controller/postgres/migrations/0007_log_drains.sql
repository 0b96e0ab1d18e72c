-- An app's log drains (controller.LogDrain): where the log aggregator sends
-- the app's lines. They go with their app. One app may not have the same
-- URL twice, which would send every line twice; the constraint's index
-- also serves listing an app's drains.
CREATE TABLE log_drains (
    id         uuid PRIMARY KEY,
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT log_drains_app_url UNIQUE (app_id, url)
);
