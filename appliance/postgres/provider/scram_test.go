package provider

import (
	"testing"
)

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{"": "''", "abc": "'abc'", "it's": "'it''s'", "''": "''''''"} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
