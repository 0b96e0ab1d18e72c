-- The controller's tables. Every change to them also writes a row to events
-- in the same transaction (see events.go).

CREATE TABLE apps (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    meta       jsonb NOT NULL DEFAULT '{}',
    strategy   text NOT NULL DEFAULT 'one-by-one',
    release_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE artifacts (
    id         uuid PRIMARY KEY,
    type       text NOT NULL,
    uri        text NOT NULL,
    meta       jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE releases (
    id          uuid PRIMARY KEY,
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    artifact_id uuid NOT NULL REFERENCES artifacts (id),
    env         jsonb NOT NULL DEFAULT '{}',
    processes   jsonb NOT NULL DEFAULT '{}',
    meta        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app_id, version)
);

ALTER TABLE apps ADD FOREIGN KEY (release_id) REFERENCES releases (id) ON DELETE SET NULL;

CREATE TABLE formations (
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    release_id uuid NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    processes  jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, release_id)
);

CREATE TABLE jobs (
    id          text PRIMARY KEY,
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    release_id  uuid NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    type        text NOT NULL DEFAULT '',
    host_id     text NOT NULL DEFAULT '',
    state       text NOT NULL,
    exit_status integer,
    args        jsonb NOT NULL DEFAULT '[]',
    meta        jsonb NOT NULL DEFAULT '{}',
    started_at  timestamptz,
    ended_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_app_id ON jobs (app_id, created_at, id);

CREATE TABLE routes (
    id             uuid PRIMARY KEY,
    app_id         uuid REFERENCES apps (id) ON DELETE CASCADE,
    type           text NOT NULL,
    service        text NOT NULL,
    domain         text NOT NULL DEFAULT '',
    path           text NOT NULL DEFAULT '',
    sticky         boolean NOT NULL DEFAULT false,
    certificate    jsonb,
    port           integer NOT NULL DEFAULT 0,
    drain_backends boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX routes_http ON routes (lower(domain), path) WHERE type = 'http';
CREATE UNIQUE INDEX routes_tcp ON routes (port) WHERE type = 'tcp';
CREATE INDEX routes_app_id ON routes (app_id);

CREATE TABLE keys (
    id          uuid PRIMARY KEY,
    key         text NOT NULL,
    fingerprint text NOT NULL UNIQUE,
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE providers (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    url        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE resources (
    id          uuid PRIMARY KEY,
    provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    external_id text NOT NULL,
    env         jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_resources (
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    resource_id uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, resource_id)
);
CREATE INDEX app_resources_resource_id ON app_resources (resource_id);

CREATE TABLE deployments (
    id             uuid PRIMARY KEY,
    app_id         uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    old_release_id uuid REFERENCES releases (id) ON DELETE SET NULL,
    new_release_id uuid NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    strategy       text NOT NULL,
    status         text NOT NULL,
    processes      jsonb NOT NULL DEFAULT '{}',
    error          text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX deployments_app_id ON deployments (app_id, created_at, id);

-- events has no foreign keys: the events of a deleted app outlive it.
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    app_id      uuid,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    op          text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_app_id ON events (app_id, id);
