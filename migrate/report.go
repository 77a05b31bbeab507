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
	// Filters is what became of the user's procmail, .forward and
	// vacation filters (nil: no filter step ran).
	Filters *FiltersReport `json:"filters,omitempty"`
	// OverQuota is set when the copy took the user over quota and the
	// run went on (Runner.OverQuotaWarn): the usage, for the mail.
	OverQuota string `json:"over_quota,omitempty"`
}

// FiltersReport is the filter conversion of the copying step
// (migrate/filters): the script written and what was not converted.
type FiltersReport struct {
	// Sources are the old files read (procmailrc, .forward, ...).
	Sources []string `json:"sources,omitempty"`
	// Script is the path of the script written ("" when the user had no
	// filters).
	Script string `json:"script,omitempty"`
	// Activated is true when the script was made the active one;
	// NotActivated says why not otherwise.
	Activated    bool   `json:"activated,omitempty"`
	NotActivated string `json:"not_activated,omitempty"`
	// Problems are the rules that were not converted, in plain words with
	// file and line.
	Problems []string `json:"problems,omitempty"`
	// Notes are differences in detail.
	Notes []string `json:"notes,omitempty"`
}

// FolderReport is one copied folder.
type FolderReport struct {
	Source   string `json:"source,omitempty"` // the old folder file
	Old      string `json:"old"`              // name on the old side (as UTF-8 for display)
	New      string `json:"new"`              // name in the new store
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
