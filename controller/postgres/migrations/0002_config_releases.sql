-- A release may carry config alone (env, no artifact, no processes), so an
-- app's config vars (BUILDPACK_URL, say) can be set before its first push.
ALTER TABLE releases ALTER COLUMN artifact_id DROP NOT NULL;
