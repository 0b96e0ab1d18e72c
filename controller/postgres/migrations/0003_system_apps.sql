-- System apps are the platform's own (see controller.App.System): only the
-- controller key may change them. The flag is set when an app is created
-- and never changes.
ALTER TABLE apps ADD COLUMN system boolean NOT NULL DEFAULT false;

-- A cluster bootstrapped before the flag existed has its platform apps
-- already, under the names bootstrap (and gitreceive, for its builder)
-- gives them; mark them, so upgrading does not leave them open to API keys.
UPDATE apps SET system = true
    WHERE name IN ('discoverd', 'postgres', 'controller', 'scheduler', 'blobstore', 'router', 'gitreceive', 'slugbuilder');
