package scram

import (
	"strings"
	"testing"
)

func TestVerifierKnownAnswer(t *testing.T) {
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = byte(i)
	}
	// Computed with Python's hashlib and hmac, apart from this code.
	const want = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	got, err := VerifierWithSalt("pencil", salt, 4096)
	if err != nil || got != want {
		t.Fatalf("verifier = %q, %v; want %q", got, err, want)
	}
	a, errA := Verifier("pencil")
	b, errB := Verifier("pencil")
	if errA != nil || errB != nil || a == b || !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") {
		t.Fatalf("verifiers %q, %q (%v, %v): want two with different salts", a, b, errA, errB)
	}
}

func TestMatches(t *testing.T) {
	v, err := Verifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stored, password string
		want                   bool
	}{
		{"its password", v, "s3cret", true},
		{"another password", v, "s3cret!", false},
		{"an MD5 hash", "md5" + strings.Repeat("0", 32), "s3cret", false},
		{"no verifier", "", "s3cret", false},
		{"a broken verifier", "SCRAM-SHA-256$4096:!!$x:y", "s3cret", false},
		{"a hostile iteration count", "SCRAM-SHA-256$999999999:c2FsdA==$x:y", "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(tt.stored, tt.password); got != tt.want {
				t.Errorf("Matches(%q, %q) = %v, want %v", tt.stored, tt.password, got, tt.want)
			}
		})
	}
}
