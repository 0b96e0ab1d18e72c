package store

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// etcdTLS is what makes the embedded etcd serve discoverd alone: its client
// and peer ports speak TLS and want a client certificate issued by the
// cluster's etcd CA. The CA's key is derived from the cluster key, so every discoverd
// of a cluster derives the same CA without handing keys around, and no job
// without the cluster key (no app, no build) can make a certificate it
// accepts.
type etcdTLS struct {
	// CertFile, KeyFile and CAFile are the server's certificate, its key
	// and the CA, written for etcd (which reads files).
	CertFile, KeyFile, CAFile string
	// Client is the TLS configuration discoverd connects with.
	Client *tls.Config
}

// etcdCAEpoch fixes the CA certificate's validity, so that every node
// derives the same certificate from the same key.
var etcdCAEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// etcdCA returns the cluster's etcd CA, derived from clusterKey.
func etcdCA(clusterKey string) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, []byte(clusterKey), []byte("flynn etcd ca"), "discoverd etcd client CA", ed25519.SeedSize)
	if err != nil {
		return nil, nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flynn etcd CA"},
		NotBefore:             etcdCAEpoch,
		NotAfter:              etcdCAEpoch.AddDate(100, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// issue makes a certificate of ca for a new key: a server certificate for
// hosts, or a client certificate when hosts is nil.
func issue(ca *x509.Certificate, caKey ed25519.PrivateKey, name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if hosts != nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// newEtcdTLS writes the etcd server's certificate for its listeners at
// addrs (the client and the peer address) into dir, readable by discoverd
// alone, and returns it with discoverd's client configuration. The
// certificate serves both ports and is also the member's client
// certificate towards its peers, which want one of the same CA.
func newEtcdTLS(dir, clusterKey string, addrs ...string) (*etcdTLS, error) {
	if clusterKey == "" {
		return nil, errors.New("etcd TLS needs the cluster key")
	}
	ca, caKey, err := etcdCA(clusterKey)
	if err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	hosts := []string{"localhost", "127.0.0.1"}
	for _, addr := range addrs {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("etcd address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) || slices.Contains(hosts, host) {
			continue
		}
		hosts = append(hosts, host)
	}
	serverCert, serverKey, err := issue(ca, caKey, "etcd", hosts)
	if err != nil {
		return nil, fmt.Errorf("etcd server certificate: %w", err)
	}
	client, err := clientTLS(ca, caKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	t := &etcdTLS{
		CertFile: filepath.Join(dir, "server.crt"),
		KeyFile:  filepath.Join(dir, "server.key"),
		CAFile:   filepath.Join(dir, "ca.crt"),
		Client:   client,
	}
	for path, data := range map[string][]byte{
		t.CertFile: serverCert,
		t.KeyFile:  serverKey,
		t.CAFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return t, nil
}

// ClientTLS returns the TLS configuration discoverd connects to the etcd
// members of the cluster whose key is clusterKey with: a client
// certificate of the CA derived from the key, and that CA as the only
// root. A discoverd that runs no member (a client) needs nothing else.
func ClientTLS(clusterKey string) (*tls.Config, error) {
	if clusterKey == "" {
		return nil, errors.New("etcd TLS needs the cluster key")
	}
	ca, caKey, err := etcdCA(clusterKey)
	if err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	return clientTLS(ca, caKey)
}

func clientTLS(ca *x509.Certificate, caKey ed25519.PrivateKey) (*tls.Config, error) {
	clientCert, clientKey, err := issue(ca, caKey, "discoverd", nil)
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
