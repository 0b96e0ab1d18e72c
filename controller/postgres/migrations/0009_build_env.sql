-- The cluster's build settings (controller.BuildEnv): variables and CA
-- certificates an operator gives every build and job of the apps that are
-- not system apps. One row, made here; BuildEnvRepo reads and changes it.
-- updated_at is NULL until the first change.
CREATE TABLE build_env (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    env        jsonb NOT NULL DEFAULT '{}',
    ca_certs   text NOT NULL DEFAULT '',
    updated_at timestamptz
);

INSERT INTO build_env DEFAULT VALUES;
