package provider

import (
	"strings"
	"testing"
)

func TestSCRAMVerifier(t *testing.T) {
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = byte(i)
	}
	// Computed with Python's hashlib and hmac, apart from this code.
	const want = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	got, err := scramVerifierWithSalt("pencil", salt, 4096)
	if err != nil || got != want {
		t.Fatalf("verifier = %q, %v; want %q", got, err, want)
	}
	a, errA := scramVerifier("pencil")
	b, errB := scramVerifier("pencil")
	if errA != nil || errB != nil || a == b || !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") {
		t.Fatalf("verifiers %q, %q (%v, %v): want two with different salts", a, b, errA, errB)
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{"": "''", "abc": "'abc'", "it's": "'it''s'", "''": "''''''"} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
