# The README explains each target.
GO      ?= go
PKGS    := ./...
FUZZTIME ?= 50000x  # inputs per target; a count, not a duration: golang/go#75804 (.ci/run)
# Version scheme: tags vMAJOR.MINOR.PATCH (docs/operations.md, "Versions");
# untagged builds say what git describe says.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/kbpay/switch/internal/buildinfo.Version=$(VERSION) -X github.com/kbpay/switch/internal/buildinfo.Commit=$(COMMIT)

.PHONY: build test check bench gobench fuzz demo clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

## test: every unit and end-to-end test, with the race detector.
test:
	$(GO) test -race -count=1 $(PKGS)

## check: vet, staticcheck, govulncheck (needs its online database: it says so
## and goes on when it cannot reach it; CI does not run it), then the tests.
check:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)
	-$(GO) run golang.org/x/vuln/cmd/govulncheck@latest $(PKGS) || echo "govulncheck could not complete (no access to vuln.go.dev?)"
	$(MAKE) test

## bench: the end-to-end benchmark in one run (bench/README.md): issuersim,
## benchrelay and switchd from bin/ on 127.0.0.1, seven paths (direct,
## bare relay, durable relay, switch with PANs, with hot tokens, with cold
## tokens, journal without fsync) at closed 16/64 and open 1,000/5,000 TPS;
## a table on stdout and bench/results.json.
## BENCH_DURATION (per phase, default 10s), BENCH_IDLE=10000 (idle
## connections phase), BENCH_PATHS, BENCH_PROFILE=DIR (switchd CPU profile),
## BENCH_ROUNDS=N (the whole set N times, medians reported),
## BENCH_COMPARE=DIR (the relay and switchd paths again with DIR's build).
bench: build
	./bin/switchbench

## gobench: the go test benchmarks (pipeline, round trip in one process, HSMs, journal).
gobench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (a count of inputs such as 50000x, or a duration; the seed corpus always runs in `make test`).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

## demo: build, start issuersim + switchd on the defaults, run termsim transactions.
## HSM=payshield puts the PIN/MAC role on the hsmsim payShield emulator.
HSM ?= software
demo: build
	HSM="$(HSM)" ./scripts/demo.sh

clean:
	rm -rf bin demo-data
