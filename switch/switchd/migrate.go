package switchd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store/postgres"
)

// migrateMain is `switchd migrate --config F`: it applies the schema
// migrations the configured PostgreSQL store lacks (the deploy's
// migration Job) and exits. The embedded store needs none.
func migrateMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchd migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "switchd migrate: %v\n", err)
			return 1
		}
	}
	if cfg.Store.Backend != "postgres" {
		fmt.Fprintf(stdout, "switchd migrate: store.backend %s has no schema migrations\n", cfg.Store.Backend)
		return 0
	}
	dsn := cfg.Store.ResolvedDSN(os.Getenv)
	if dsn == "" {
		fmt.Fprintf(stderr, "switchd migrate: no DSN (store.dsn or $%s)\n", cfg.Store.DSNEnv)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	applied, err := postgres.Migrate(ctx, dsn)
	if err != nil {
		fmt.Fprintf(stderr, "switchd migrate: %s: %v\n", postgres.MaskDSN(dsn), err)
		return 1
	}
	fmt.Fprintf(stdout, "switchd migrate: %s at schema version %d (applied %v)\n", postgres.MaskDSN(dsn), postgres.Latest(), applied)
	return 0
}
