# mailmig — see README.md.
GO      ?= go
BIN     ?= bin/mailmig
VERSION ?= 0.1.0-dev+$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION)
export CGO_ENABLED ?= 0
PKGS    := ./...

.PHONY: all build man install deb test test-setup test-short lint fuzz bench bench-convert bench-imap bench-lmtp bench-migrate bench-submission bench-mailstore bench-web demo clean bench-auth

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mailmig

# Man pages and shell completion, generated from the command definitions
# by the binary itself (mailmig gendoc), so they never drift from it.
BUILDDIR ?= build
GEN := $(BUILDDIR)/gen
man: build
	rm -rf $(GEN)
	$(BIN) gendoc --man $(GEN)/man --bash $(GEN)/mailmig.bash --zsh $(GEN)/_mailmig

# make install [DESTDIR=...] [PREFIX=/usr/local]: binary, default
# configuration (kept when one exists), systemd units (ExecStart pointed
# at $(SBINDIR)), sysusers.d/tmpfiles.d, man pages, bash/zsh completion.
# It creates no user and starts nothing: run systemd-sysusers and
# systemd-tmpfiles --create afterwards, or use the Debian package.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
LIBDIR     ?= $(PREFIX)/lib
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
install: man
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/mailmig
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/mailmig
	[ -e $(DESTDIR)$(SYSCONFDIR)/mailmig/mailmig.toml ] || \
	  install -m 0640 cmd/mailmig/config/default.toml $(DESTDIR)$(SYSCONFDIR)/mailmig/mailmig.toml
	install -d -m 0755 $(DESTDIR)$(LIBDIR)/systemd/system
	for u in mailmig-serve.service mailmig-run.service; do \
	  sed 's|/usr/sbin/mailmig|$(SBINDIR)/mailmig|; s|/etc/mailmig/mailmig.toml|$(SYSCONFDIR)/mailmig/mailmig.toml|' \
	    scripts/systemd/$$u > $(DESTDIR)$(LIBDIR)/systemd/system/$$u && \
	  chmod 0644 $(DESTDIR)$(LIBDIR)/systemd/system/$$u || exit 1; \
	done
	install -D -m 0644 scripts/systemd/mailmig.sysusers $(DESTDIR)$(LIBDIR)/sysusers.d/mailmig.conf
	install -D -m 0644 scripts/systemd/mailmig.tmpfiles $(DESTDIR)$(LIBDIR)/tmpfiles.d/mailmig.conf
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(GEN)/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(GEN)/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -D -m 0644 $(GEN)/mailmig.bash $(DESTDIR)$(BASHCOMPDIR)/mailmig
	install -D -m 0644 $(GEN)/_mailmig $(DESTDIR)$(ZSHCOMPDIR)/_mailmig

# make deb: $(BUILDDIR)/mailmig_VERSION_ARCH.deb with dpkg-deb from a
# staged `make install` tree (PREFIX=/usr; BUILDDIR=DIR puts it elsewhere).
# The configuration is a conffile; the postinst creates the mailmig user
# and its directories, the postrm removes them on purge (scripts/deb).
DEB_VERSION := $(subst -,~,$(VERSION))
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_STAGE   := $(BUILDDIR)/deb
DEB         := $(BUILDDIR)/mailmig_$(DEB_VERSION)_$(DEB_ARCH).deb
deb:
	rm -rf $(DEB_STAGE)
	$(MAKE) install CGO_ENABLED=0 DESTDIR=$(abspath $(DEB_STAGE)) PREFIX=/usr SBINDIR=/usr/sbin
	gzip -9n $(DEB_STAGE)/usr/share/man/man*/*
	install -d -m 0755 $(DEB_STAGE)/DEBIAN
	install -m 0755 scripts/deb/postinst scripts/deb/postrm $(DEB_STAGE)/DEBIAN/
	echo /etc/mailmig/mailmig.toml > $(DEB_STAGE)/DEBIAN/conffiles
	sed -e 's/@VERSION@/$(DEB_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	  -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_STAGE) | cut -f1)/" \
	  scripts/deb/control > $(DEB_STAGE)/DEBIAN/control
	dpkg-deb --root-owner-group -Zgzip --build $(DEB_STAGE) $(DEB)
	@echo $(DEB)

# The full suite: race detector (needs cgo), shuffled order, and the
# end-to-end tests that drive the real binary with Debian's clients and
# dovecot as the judge.
test: test-setup lint
	CGO_ENABLED=1 $(GO) test -race -shuffle=on -timeout 40m $(PKGS)
	# Time bounds, which the race detector would distort and parallel
	# packages would crowd: again without -race, one package at a time.
	$(GO) test -count=1 -p 1 -run '^(TestPagesFast|TestUnknownCostsLikeWrong|TestLoginDuringSpray)$$' ./server/web ./server/auth ./cmd/mailmig

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

bench: bench-convert bench-imap bench-lmtp bench-migrate bench-submission bench-mailstore bench-web bench-auth

# logins/s per password source; yescrypt against mkpasswd (docs/accounts.md)
bench-auth:
	bash scripts/bench-auth

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
	rm -rf bin build
