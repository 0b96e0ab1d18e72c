package store

import (
	"encoding/pem"
	"errors"
	"fmt"
)

// ClientPEM returns, PEM-encoded, what a program that reads files (such as
// Patroni, a Python etcd client) needs to reach the embedded etcd of the
// cluster whose key is clusterKey: the cluster's etcd CA certificate, to
// trust the members by, and a new client certificate of that CA named
// name, with its private key. Only the holder of the cluster key can make
// these, as with ClientTLS.
func ClientPEM(clusterKey, name string) (caPEM, certPEM, keyPEM []byte, err error) {
	if clusterKey == "" {
		return nil, nil, nil, errors.New("etcd TLS needs the cluster key")
	}
	ca, caKey, err := etcdCA(clusterKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("etcd CA: %w", err)
	}
	certPEM, keyPEM, err = issue(ca, caKey, name, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), certPEM, keyPEM, nil
}
