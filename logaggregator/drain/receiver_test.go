package drain

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// testCert is a self-signed certificate for 127.0.0.1 that every TLS
// receiver of the tests serves, and the pool that trusts it.
type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newTestCert(t testing.TB) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "drain receiver"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
}

// receiver is a drain's far end on 127.0.0.1, of one of the schemes: a
// syslog server (plain or TLS) reading octet-counted frames, or an HTTPS
// server taking logplex POSTs. It can be stopped and started again on
// the same address. Whatever it gets that breaks the protocol fails the
// test.
type receiver struct {
	t      testing.TB
	scheme string
	cert   *testCert
	addr   string
	// path and user are the HTTPS URL's.
	path, user string

	mu       sync.Mutex
	msgs     []message
	frameIDs map[string]int // HTTPS: POSTs seen per frame id
	// fail answers that many POSTs more with 503.
	fail     int
	posts    int
	authSeen []string

	ln    net.Listener
	srv   *http.Server
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newReceiver(t testing.TB, scheme string, cert *testCert) *receiver {
	r := &receiver{t: t, scheme: scheme, cert: cert, addr: "127.0.0.1:0", path: "/drain/TOKEN", frameIDs: map[string]int{}, conns: map[net.Conn]struct{}{}}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// url is the drain URL that reaches r.
func (r *receiver) url() string {
	if r.scheme == controller.LogDrainSchemeHTTPS {
		return "https://" + r.user + r.addr + r.path
	}
	return r.scheme + "://" + r.addr
}

func (r *receiver) start() {
	r.t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("receiver: %v", err)
	}
	r.addr = ln.Addr().String()
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{r.cert.cert}}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.scheme {
	case controller.LogDrainSchemeHTTPS:
		r.srv = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), TLSConfig: tlsConfig, ErrorLog: log.New(io.Discard, "", 0)}
		srv := r.srv
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = srv.ServeTLS(ln, "", "")
		}()
	case controller.LogDrainSchemeSyslogTLS:
		ln = tls.NewListener(ln, tlsConfig)
		fallthrough
	default:
		r.ln = ln
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.accept(ln)
		}()
	}
}

// stop closes the listener and every connection, and waits for them.
func (r *receiver) stop() {
	r.mu.Lock()
	srv, ln := r.srv, r.ln
	r.srv, r.ln = nil, nil
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	if srv != nil {
		// Shutdown lets a POST being answered end first, so no
		// handler outlives the test.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		cancel()
	}
	if ln != nil {
		ln.Close()
	}
	r.wg.Wait()
}

func (r *receiver) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.ln != ln { // stopped meanwhile
			r.mu.Unlock()
			conn.Close()
			return
		}
		r.conns[conn] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.conns, conn)
				r.mu.Unlock()
				conn.Close()
			}()
			r.readSyslog(conn)
		}()
	}
}

// readSyslog reads octet-counted frames until the connection ends.
func (r *receiver) readSyslog(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		length, err := br.ReadString(' ')
		if err != nil {
			// Between frames the sender may go (or fail its TLS
			// handshake); stop closes connections wherever they are.
			if length != "" && !errors.Is(err, net.ErrClosed) {
				r.protocolError(fmt.Errorf("reading MSG-LEN: %q, %w", length, err))
			}
			return
		}
		n, err := strconv.Atoi(length[:len(length)-1])
		if err != nil || n <= 0 || n > maxFrameLen {
			r.protocolError(fmt.Errorf("MSG-LEN %q", length))
			return
		}
		frame := make([]byte, len(length)+n)
		copy(frame, length)
		if _, err := io.ReadFull(br, frame[len(length):]); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.protocolError(fmt.Errorf("reading a %d-byte message: %w", n, err))
			}
			return
		}
		m, rest, err := parseFrame(frame)
		if err != nil || len(rest) != 0 {
			r.protocolError(fmt.Errorf("frame %q: %v", frame, err))
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if user, pass, ok := req.BasicAuth(); ok {
		r.authSeen = append(r.authSeen, user+":"+pass)
	}
	switch {
	case req.Method != http.MethodPost || req.URL.Path != r.path:
		r.protocolErrorLocked(fmt.Errorf("%s %s, want POST %s", req.Method, req.URL.Path, r.path))
	case req.Header.Get("Content-Type") != ContentTypeLogplex:
		r.protocolErrorLocked(fmt.Errorf("Content-Type %q", req.Header.Get("Content-Type")))
	case req.Header.Get(HeaderFrameID) == "" || req.Header.Get(HeaderDrainToken) == "":
		r.protocolErrorLocked(fmt.Errorf("headers %v lack the frame id or the drain token", req.Header))
	}
	id := req.Header.Get(HeaderFrameID)
	r.frameIDs[id]++
	if r.fail > 0 {
		r.fail--
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	var msgs []message
	for rest := body; len(rest) > 0; {
		var m message
		if m, rest, err = parseFrame(rest); err != nil {
			r.protocolErrorLocked(fmt.Errorf("body %q: %v", body, err))
			return
		}
		msgs = append(msgs, m)
	}
	if count := req.Header.Get(HeaderMsgCount); count != strconv.Itoa(len(msgs)) {
		r.protocolErrorLocked(fmt.Errorf("%s %q for %d messages", HeaderMsgCount, count, len(msgs)))
	}
	r.msgs = append(r.msgs, msgs...)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) protocolError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.protocolErrorLocked(err)
}

func (r *receiver) protocolErrorLocked(err error) { r.t.Errorf("receiver %s: %v", r.scheme, err) }

// got returns the messages received so far.
func (r *receiver) got() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs...)
}
