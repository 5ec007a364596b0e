-- Issuer key changes (0800, DE 70 161) as received: the new zone PIN key
-- under the route's zone master key (hex, never clear) and its KCV, so
-- every instance imports the key the issuer sent over one instance's link.
CREATE TABLE zone_keys (
	id          BIGSERIAL PRIMARY KEY,
	route       TEXT NOT NULL,
	key_label   TEXT NOT NULL,
	zmk_label   TEXT NOT NULL,
	version     INTEGER NOT NULL,
	wrapped     TEXT NOT NULL,
	kcv         TEXT NOT NULL,
	instance    TEXT NOT NULL,
	recorded_at BIGINT NOT NULL
);
CREATE INDEX zone_keys_route ON zone_keys (route, id);
