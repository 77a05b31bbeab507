// Package packaging holds the test of `make install` and `make deb`
// (issue 16): the Debian package built from a staged install tree
// installs with dpkg -i, creates the mailmig user and directories, puts
// the units where systemd looks (systemd-analyze verify with their man
// pages), the man pages where man finds them, runs, and purges without
// leaving anything behind.
package packaging
