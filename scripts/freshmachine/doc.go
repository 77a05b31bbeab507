// Package freshmachine holds the tests of the fresh-machine rules
// (issue 16): `make demo` needs nothing but Go, make, git, bash and
// coreutils on PATH, and `make test`'s set-up (scripts/test-setup) fails
// with the apt-get line to run when a Debian tool the tests need is
// missing, never letting a run pass that could not judge anything.
package freshmachine
