// Package tlspin pins a TLS server to one certificate instead of a CA chain.
//
// A pin is the standard base64 encoding (with padding) of the SHA-256 digest
// of the leaf certificate's DER bytes: the certificate as it is sent on the
// wire, not its public key. Bootstrap prints the pin of the certificate it
// generates for the controller; the flynn CLI stores it and checks it on
// every connection, so a self-signed certificate is as safe as the pin was
// when it reached the user.
package tlspin

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
)

// Pin returns the pin of a certificate given in DER form.
func Pin(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// MismatchError is the error a pinned connection fails with when the server
// presents another certificate.
type MismatchError struct {
	// Want is the configured pin, Got the pin of the certificate presented.
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("TLS pin mismatch: the server's certificate has pin %s, want %s", e.Got, e.Want)
}

// Verify returns a tls.Config.VerifyConnection hook that accepts only a
// server whose leaf certificate has pin. It runs on every handshake,
// resumed ones included.
func Verify(pin string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("TLS pin: the server presented no certificate")
		}
		got := Pin(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare([]byte(got), []byte(pin)) != 1 {
			return &MismatchError{Want: pin, Got: got}
		}
		return nil
	}
}

// Config returns a client TLS config that sends serverName (SNI) and trusts
// exactly the certificate with pin, in place of the usual chain and host
// name checks.
func Config(pin, serverName string) *tls.Config {
	return &tls.Config{
		ServerName: serverName,
		// The chain check is replaced, not skipped: VerifyConnection
		// accepts only the pinned certificate.
		InsecureSkipVerify: true, //nolint:gosec // verified by pin below
		VerifyConnection:   Verify(pin),
		MinVersion:         tls.VersionTLS12,
	}
}
