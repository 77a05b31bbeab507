package migrate

import (
	"encoding/json"
	"fmt"
)

// Report is what a copy did, kept as JSON in the queue (state's report
// column) so the confirmation mail can be written after a restart.
type Report struct {
	Folders []FolderReport `json:"folders"`
	// Renamed lists folders whose name had to change (old → new).
	Renamed []Rename `json:"renamed,omitempty"`
	// Messages and Bytes are the totals copied.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Duplicates counts messages found on both sides (dual delivery)
	// and kept once.
	Duplicates int64 `json:"duplicates,omitempty"`
	// Skipped lists old files that were not copied, with the reason
	// (files in ~/mail that are not mailboxes).
	Skipped []string `json:"skipped,omitempty"`
	// Seconds is how long the copy took.
	Seconds float64 `json:"seconds,omitempty"`
}

// FolderReport is one copied folder.
type FolderReport struct {
	Old      string `json:"old"` // name on the old side (as UTF-8 for display)
	New      string `json:"new"` // name in the new store
	Messages int64  `json:"messages"`
	Bytes    int64  `json:"bytes"`
}

// Rename is a folder name that changed.
type Rename struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// JSON encodes the report.
func (r *Report) JSON() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("migrate: encode report: %w", err)
	}
	return string(b), nil
}

// ParseReport decodes a report written by JSON ("" gives an empty one).
func ParseReport(s string) (*Report, error) {
	r := &Report{}
	if s == "" {
		return r, nil
	}
	if err := json.Unmarshal([]byte(s), r); err != nil {
		return nil, fmt.Errorf("migrate: decode report: %w", err)
	}
	return r, nil
}
