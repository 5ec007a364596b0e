package terminal

import (
	"errors"
	"flag"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ParseFlags parses a termsim subcommand's args with fs (whose Usage and
// output the caller set). done is true when the caller must return code at
// once: ExitOK after -h or --help (fs printed its usage), ExitUsage after a
// bad flag (fs printed the error and its usage).
func ParseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, true
		}
		return ExitUsage, true
	}
	return ExitOK, false
}

// ConsoleLogger is the simulators' human-readable logger: development
// console lines on w from level up (termsim's -v lowers the level).
func ConsoleLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level))
}
