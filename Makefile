# mailmig — see README.md.
GO      ?= go
BIN     ?= bin/mailmig
export CGO_ENABLED ?= 0
PKGS    := ./...

.PHONY: all build test test-setup test-short lint fuzz bench bench-convert bench-imap bench-lmtp bench-migrate bench-submission bench-mailstore bench-web demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/mailmig

# The full suite: race detector (needs cgo), shuffled order, and the
# end-to-end tests that drive the real binary with Debian's clients and
# dovecot as the judge.
test: test-setup lint
	CGO_ENABLED=1 $(GO) test -race -shuffle=on -timeout 40m $(PKGS)
	# Time bounds, which the race detector would distort.
	$(GO) test -count=1 -run 'TestPagesFast' ./server/web

# Installs the Debian tools the tests drive (scripts/test-packages) when run
# as root; otherwise fails with the apt-get line to run. Never skipped.
test-setup:
	bash scripts/test-setup

test-short:
	$(GO) test -short $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every fuzz target, briefly (FUZZTIME=30s for longer).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: bench-convert bench-imap bench-lmtp bench-migrate bench-submission bench-mailstore bench-web

bench-convert:
	bash scripts/bench-convert

bench-imap:
	bash scripts/bench-imap

bench-lmtp:
	bash scripts/bench-lmtp

bench-migrate:
	bash scripts/bench-migrate

bench-submission:
	bash scripts/bench-submission

bench-mailstore:
	bash scripts/bench-mailstore

# The web page's time bound (50 ms a page with 1000 queued users and a
# 200-rule script), without the race detector, and its benchmark.
bench-web:
	$(GO) test -count=1 -run TestPagesFast -v ./server/web
	$(GO) test -run XXX -bench Pages -benchtime 200x ./server/web

# The whole story on a generated demo world, on loopback, in a temp dir.
demo: build
	bash scripts/demo $(BIN)

clean:
	rm -rf bin
