package mailstore_test

import (
	"path/filepath"
	"testing"

	"mailmig/mailstore"
	"mailmig/mailstore/mailstoretest"
)

func newTestStore(t *testing.T, quotaBytes, quotaMessages int64) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(filepath.Join(t.TempDir(), "Maildir"), mailstore.Options{
		NoFsync: true, CreateRoot: true, QuotaBytes: quotaBytes, QuotaMessages: quotaMessages,
		Hub: mailstore.NewHub(), LockTimeout: 10e9,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	mailstoretest.Run(t, newTestStore)
}
