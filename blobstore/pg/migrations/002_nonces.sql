-- Nonces of single-use signed URLs that were used. The primary key makes a
-- claim atomic: of two inserts of one nonce, exactly one succeeds. Rows
-- are deleted once their URL has expired, hence the index.
CREATE TABLE blobstore_nonces (
    nonce      text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX blobstore_nonces_expires_at ON blobstore_nonces (expires_at);
