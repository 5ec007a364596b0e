package switchd

// switchdUsage is `switchd --help`.
const switchdUsage = `switchd: the ISO 8583 payment switch.

Usage:
  switchd [--config FILE]           run until SIGTERM or SIGINT
  switchd -t [--config FILE]        check the configuration (HSM key labels
                                    included) without starting; exit 1 on a problem
  switchd settle [--date YYYY-MM-DD] [--config FILE] [--out DIR]
                                    write the day's settlement CSV files
  switchd keys list|import|rotate --config FILE ...
                                    key ceremony: list keys, import a key from
                                    2-3 components with KCVs, rotate (docs/links.md)
  switchd version | --version       print version, commit and Go version
  switchd help | --help             this text

Flags:
  --config FILE   YAML configuration (default: the built-in demo configuration:
                  listeners 127.0.0.1:8583 and :8584, admin 127.0.0.1:8580,
                  issuers 127.0.0.1:9101-9103, data in ./data);
                  reference: docs/configuration.md
  -t              check the configuration and exit

Signals:
  SIGTERM, SIGINT stop accepting, let in-flight transactions finish within
                  drain_timeout (default 10s), then exit 0
  SIGHUP          re-read --config and apply it as a diff (routes, endpoints,
                  listener limits and TLS; POST /v1/reload does the same); a bad
                  or restart-only change is refused whole and the running
                  configuration stays (docs/links.md)

Environment (names are the defaults; the configuration can rename them):
  SWITCH_ADMIN_TOKEN  admin API bearer token (required outside development mode)
  SWITCH_MASTER_KEY   software HSM master key, 64 hex digits (production)
  SWITCH_HSM_PIN      PKCS#11 user PIN (backend pkcs11)

Development mode (demo keys, demo admin token, generated master key) holds
only while every listener and the admin API are on loopback and no master
key is configured; docs/security.md. Operations: docs/operations.md.

Exit status: 0 ok, 1 configuration or start-up problem, 2 usage error.`
