package browser

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
)

// SPKIPin returns the pin of cert's public key that Options.SPKIPins takes:
// the standard base64 of the SHA-256 of its DER SubjectPublicKeyInfo. The pin
// stays the same when the certificate is renewed with the same key.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
