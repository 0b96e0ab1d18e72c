package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/testdeps"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEmbeddedEtcdServesDiscoverdAlone: with a cluster key, the embedded
// etcd's client port answers only TLS clients holding a certificate of the
// CA derived from that key. A job that can reach the port (a system job on
// the node's network) gets nothing without the key; with it, discoverd
// reads and writes.
func TestEmbeddedEtcdServesDiscoverdAlone(t *testing.T) {
	testdeps.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clientAddr := freeAddr(t)
	e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: t.TempDir(), ClientAddr: clientAddr, PeerAddr: freeAddr(t), ClusterKey: "the cluster key"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Endpoints(); len(got) != 1 || !strings.HasPrefix(got[0], "https://") {
		t.Fatalf("endpoints = %v, want one https URL", got)
	}

	// Plain HTTP (etcd's JSON gateway, as curl would use it): refused.
	hc := &http.Client{Timeout: 5 * time.Second}
	if resp, err := hc.Post("http://"+clientAddr+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"Zm9v"}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP read etcd")
		}
	}
	// TLS without a client certificate: the handshake fails.
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := insecure.Post("https://"+clientAddr+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"Zm9v"}`)); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS client without a certificate got %s", resp.Status)
	}
	// A client certificate of another cluster's CA: refused too.
	other, err := newEtcdTLS(t.TempDir(), "another cluster's key", clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Dial(ctx, e.Endpoints(), other.Client, nil); err == nil {
		octx, ocancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.Put(octx, "/intruder", "x")
		ocancel()
		c.Close()
		if err == nil {
			t.Error("a certificate of another CA wrote to etcd")
		}
	}

	// discoverd, with the cluster key's certificate: reads and writes.
	c, err := Dial(ctx, e.Endpoints(), e.ClientTLS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, "/ok", "yes"); err != nil {
		t.Fatalf("discoverd's put: %v", err)
	}
	resp, err := c.Get(ctx, "/ok")
	if err != nil || len(resp.Kvs) != 1 || !bytes.Equal(resp.Kvs[0].Value, []byte("yes")) {
		t.Fatalf("discoverd's get = %v, %v", resp, err)
	}
}

// Every node derives the same CA from the same key, and another key gives
// another CA.
func TestEtcdCAIsDerivedFromTheKey(t *testing.T) {
	a, _, err := etcdCA("k1")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := etcdCA("k1")
	c, _, _ := etcdCA("k2")
	if !bytes.Equal(a.Raw, b.Raw) {
		t.Error("the same key derived two CA certificates")
	}
	if bytes.Equal(a.Raw, c.Raw) {
		t.Error("two keys derived the same CA certificate")
	}
}
