# The README explains each target.
GO      ?= go
PKGS    := ./...
FUZZTIME ?= 10s

.PHONY: build test check bench fuzz demo clean

build:
	$(GO) build -o bin/ ./cmd/...

## test: every unit and end-to-end test, with the race detector.
test:
	$(GO) test -race -count=1 $(PKGS)

## check: vet, staticcheck, govulncheck (needs its online database: it says so
## and goes on when it cannot reach it; CI does not run it), then the tests.
check:
	$(GO) vet $$($(GO) list $(PKGS) | grep -v /switch/frame/netheader)
	# moov-io's network.Header counts in int, not io.ReaderFrom's int64.
	$(GO) vet -stdmethods=false ./switch/frame/netheader
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)
	-$(GO) run golang.org/x/vuln/cmd/govulncheck@latest $(PKGS) || echo "govulncheck could not complete (no access to vuln.go.dev?)"
	$(MAKE) test

## bench: the pipeline and round-trip benchmarks (switch vs direct vs raw relay).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (the seed corpus always runs in `make test`).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

## demo: build, start issuersim + switchd on the defaults, run termsim transactions.
demo: build
	./scripts/demo.sh

clean:
	rm -rf bin demo-data
