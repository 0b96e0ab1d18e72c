package provider

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// SCRAM-SHA-256 parameters, as Postgres picks them for a password it
// hashes itself.
const (
	scramIterations = 4096
	scramSaltLen    = 16
)

// scramVerifier returns the SCRAM-SHA-256 verifier of password in the
// form Postgres stores ("SCRAM-SHA-256$iter:salt$StoredKey:ServerKey").
// A role created with it never has its password in a statement, so that
// no server log (log_statement = 'ddl', a failed statement) shows it.
// The password must need no SASLprep: ours are hex.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	return scramVerifierWithSalt(password, salt, scramIterations)
}

func scramVerifierWithSalt(password string, salt []byte, iterations int) (string, error) {
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
