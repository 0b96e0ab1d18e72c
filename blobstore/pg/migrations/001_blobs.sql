-- Blobs are split into chunks of at most chunk_size bytes. An upload
-- writes its chunks under a fresh blob_id and switches the path's row to
-- it in the same transaction, so readers never see a partial blob.
CREATE SEQUENCE blobstore_blob_ids;

CREATE TABLE blobstore_blobs (
    path        text PRIMARY KEY,
    blob_id     bigint NOT NULL UNIQUE,
    size        bigint NOT NULL CHECK (size >= 0),
    sha256      text NOT NULL,
    chunk_size  integer NOT NULL CHECK (chunk_size > 0),
    modified_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blobstore_chunks (
    blob_id bigint NOT NULL,
    n       integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (blob_id, n)
);

-- Chunks are mostly compressed tarballs: store them out of line without
-- trying to compress them again.
ALTER TABLE blobstore_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
