-- A version that an upload replaced or a delete removed keeps its chunks
-- for a while: downloads read chunk by chunk, each in its own short query,
-- and one that opened the version before it was retired still finds it.
-- Store.Sweep deletes the chunks once their grace has passed.
CREATE TABLE blobstore_retired (
    blob_id    bigint PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX blobstore_retired_retired_at ON blobstore_retired (retired_at);
