package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/openflynn/flynn/pkg/tlspin"
)

// genTLSCert makes a self-signed certificate for Hosts (the controller's,
// served by the router for controller.DOMAIN): {{STEP.cert}}, {{STEP.key}}
// (PEM) and {{STEP.pin}}, the pin the flynn CLI checks (pkg/tlspin).
type genTLSCert struct {
	stepHead
	// Hosts are the DNS names (or IPs) the certificate is for.
	Hosts []string `json:"hosts"`
	// ValidFor is how long it is valid, a Go duration; default 5 years.
	ValidFor string `json:"valid_for,omitempty"`
}

func (g *genTLSCert) run(_ context.Context, r *run, id string) (string, error) {
	if len(g.Hosts) == 0 {
		return "", fmt.Errorf("hosts is empty")
	}
	valid := 5 * 365 * 24 * time.Hour
	if g.ValidFor != "" {
		d, err := time.ParseDuration(g.ValidFor)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("valid_for %q: want a positive duration like 8760h", g.ValidFor)
		}
		valid = d
	}
	certPEM, keyPEM, der, err := selfSigned(g.Hosts, r.cfg.Now(), valid)
	if err != nil {
		return "", err
	}
	pin := tlspin.Pin(der)
	r.setValues(id, map[string]string{"cert": certPEM, "key": keyPEM, "pin": pin})
	return "pin " + pin, nil
}

// selfSigned returns a certificate and key as PEM and the certificate's DER.
func selfSigned(hosts []string, now time.Time, valid time.Duration) (certPEM, keyPEM string, der []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Flynn"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, fmt.Errorf("encode key: %w", err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certPEM, keyPEM, der, nil
}
