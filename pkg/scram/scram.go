// Package scram makes and checks the SCRAM-SHA-256 verifiers Postgres
// stores for a role's password (pg_authid.rolpassword), as libpq's
// PQencryptPasswordConn makes them. A role created or altered with a
// verifier never has its password in a statement, so no server log (a
// failed statement, log_statement = 'ddl') can show it.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Iterations is Postgres's default (scram_iterations).
const Iterations = 4096

// saltLen is the length of the salt Postgres picks.
const saltLen = 16

// Verifier returns the verifier of password with a random salt:
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>". The password
// must need no SASLprep (printable ASCII does not).
func Verifier(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram: salt: %w", err)
	}
	return VerifierWithSalt(password, salt, Iterations)
}

// VerifierWithSalt returns the verifier of password with the salt and
// iteration count given.
func VerifierWithSalt(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Matches reports whether stored (a role's rolpassword) is a verifier of
// password. Anything else (no password, an MD5 hash, a verifier of another
// password, an iteration count no server would pick) does not match.
func Matches(stored, password string) bool {
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, _, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterStr, saltB64, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return false
	}
	iterations, err := strconv.Atoi(iterStr)
	if err != nil || iterations < 1 || iterations > 1<<24 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		return false
	}
	want, err := VerifierWithSalt(password, salt, iterations)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(stored)) == 1
}
