-- Why a job failed to start, as its host or the scheduler said
-- (controller.Job.Error): an image that is not on the host, an image
-- archive that would not load. Empty for every other job.
ALTER TABLE jobs ADD COLUMN error text NOT NULL DEFAULT '';
