package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// The PEM files a program outside discoverd reads reach the embedded etcd
// of the cluster with the same key, as ClientTLS does.
func TestClientPEMReachesTheEmbeddedEtcd(t *testing.T) {
	testdeps.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const key = "the cluster key"
	e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: t.TempDir(), ClientAddr: freeAddr(t), PeerAddr: freeAddr(t), ClusterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	caPEM, certPEM, keyPEM, err := ClientPEM(key, "patroni")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA PEM does not parse:\n%s", caPEM)
	}
	c, err := Dial(ctx, e.Endpoints(), &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, "/flynn/test", "ok"); err != nil {
		t.Fatalf("put with the PEM certificate: %v", err)
	}
}

// The CA is the cluster's (the same for every call), the certificate is
// a client certificate of it, and no key means no certificate.
func TestClientPEM(t *testing.T) {
	if _, _, _, err := ClientPEM("", "patroni"); err == nil {
		t.Error("ClientPEM without a key succeeded")
	}
	ca1, cert, _, err := ClientPEM("k1", "patroni")
	if err != nil {
		t.Fatal(err)
	}
	ca2, _, _, _ := ClientPEM("k1", "other")
	if string(ca1) != string(ca2) {
		t.Error("one key gave two CA certificates")
	}
	ca, _, _ := etcdCA("k1")
	block, _ := pem.Decode(cert)
	if block == nil {
		t.Fatalf("certificate PEM does not parse:\n%s", cert)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("certificate is not of the cluster's CA: %v", err)
	}
	if leaf.Subject.CommonName != "patroni" || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("certificate = CN %q, usages %v; want CN patroni, client auth only", leaf.Subject.CommonName, leaf.ExtKeyUsage)
	}
}
