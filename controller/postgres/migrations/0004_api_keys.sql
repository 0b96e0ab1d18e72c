-- API keys let people use the controller API (see controller.APIKey). Only
-- the SHA-256 of each secret is kept: the secret itself is shown once, when
-- the key is created.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    hash       bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
