-- Instance numbers (the RRN prefix, 0-99) handed out to instances that do
-- not configure instance_id: one number per instance name, kept across
-- restarts.
CREATE TABLE instance_numbers (
	name        TEXT PRIMARY KEY,
	number      INTEGER NOT NULL UNIQUE CHECK (number BETWEEN 0 AND 99),
	assigned_at BIGINT NOT NULL
);
