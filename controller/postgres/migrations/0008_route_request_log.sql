-- A route may turn off the router's lines in its app's log
-- (controller.Route.NoRequestLog); routes log by default.
ALTER TABLE routes ADD COLUMN no_request_log boolean NOT NULL DEFAULT false;
