-- An app may select its stack (controller.App.Stack, a name of package
-- pkg/stacks); empty means the default, or what a push's requested
-- language version needs.
ALTER TABLE apps ADD COLUMN stack text NOT NULL DEFAULT '';
