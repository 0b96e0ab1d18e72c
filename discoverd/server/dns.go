package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/store"
)

// DNSZone is the zone discoverd answers for.
const DNSZone = "discoverd."

// dnsTTL is short: instances come and go within seconds.
const dnsTTL = 5

// InstanceLister is what DNS needs from the store.
type InstanceLister interface {
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, int64, error)
}

// DNS answers A, AAAA and SRV queries for "<service>.discoverd." (every
// live instance) and "leader.<service>.discoverd." (the oldest one). SRV
// targets are "<instance id>.<service>.discoverd.", which resolve to the
// instance's address and are also given in the additional section; an id
// that is not one DNS label (it has a dot, or is longer than 63) is named
// there by a label derived from it (see srvLabel).
// Names outside the zone go to Recursors, or are refused when there are none.
type DNS struct {
	Store  InstanceLister
	Logger *slog.Logger
	// Recursors are "host:port" resolvers for names outside the zone; empty
	// refuses them.
	Recursors []string
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := d.answer(req, w.RemoteAddr())
	_ = w.WriteMsg(resp)
}

func (d *DNS) answer(req *dns.Msg, remote net.Addr) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		return resp
	}
	q := req.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	if !dns.IsSubDomain(DNSZone, name) {
		return d.recurse(req, remote)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	labels := dns.SplitDomainName(strings.TrimSuffix(name, DNSZone))
	var (
		list []*discoverd.Instance
		err  error
	)
	switch len(labels) {
	case 1: // <service>.discoverd.
		list, _, err = d.Store.Instances(ctx, labels[0])
	case 2: // leader.<service>.discoverd. or <id>.<service>.discoverd.
		list, _, err = d.Store.Instances(ctx, labels[1])
		if err == nil {
			list = pick(list, labels[0])
		}
	default:
		err = store.ErrServiceNotFound
	}
	if errors.Is(err, store.ErrServiceNotFound) || (err == nil && len(list) == 0 && len(labels) == 2) {
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Ns = []dns.RR{d.soa()}
		return resp
	}
	if err != nil {
		d.Logger.Warn("dns lookup failed", "name", name, "err", err)
		resp.SetRcode(req, dns.RcodeServerFailure)
		return resp
	}
	for _, inst := range list {
		ip := net.ParseIP(inst.Host())
		switch q.Qtype {
		case dns.TypeA, dns.TypeANY:
			if ip4 := ip.To4(); ip4 != nil {
				resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr(name, dns.TypeA), A: ip4})
			}
			if q.Qtype != dns.TypeANY {
				break
			}
			fallthrough
		case dns.TypeAAAA:
			if ip != nil && ip.To4() == nil {
				resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip})
			}
		case dns.TypeSRV:
			target := fmt.Sprintf("%s.%s.%s", srvLabel(inst.ID), serviceOf(labels), DNSZone)
			resp.Answer = append(resp.Answer, &dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: 0, Weight: 0, Port: uint16(inst.Port()), Target: target})
			if ip4 := ip.To4(); ip4 != nil {
				resp.Extra = append(resp.Extra, &dns.A{Hdr: hdr(target, dns.TypeA), A: ip4})
			} else if ip != nil {
				resp.Extra = append(resp.Extra, &dns.AAAA{Hdr: hdr(target, dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	if len(resp.Answer) == 0 {
		resp.Ns = []dns.RR{d.soa()}
	}
	return resp
}

// pick narrows list to the leader or to the instance with the given id.
func pick(list []*discoverd.Instance, label string) []*discoverd.Instance {
	if label == "leader" {
		if len(list) == 0 {
			return nil
		}
		return list[:1] // Instances returns oldest first
	}
	for _, inst := range list {
		if strings.EqualFold(srvLabel(inst.ID), label) {
			return []*discoverd.Instance{inst}
		}
	}
	return nil
}

// srvLabel is the DNS label naming the instance with this id in SRV
// targets: the id itself when it is one label, else "id-" and a hash of
// it. An id with a dot would name a deeper name no query finds, and one
// longer than 63 bytes would make the whole answer impossible to send.
func srvLabel(id string) string {
	if len(id) <= 63 && id != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "id-" + hex.EncodeToString(sum[:16])
}

func serviceOf(labels []string) string { return labels[len(labels)-1] }

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
}

func (d *DNS) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: DNSZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
		Ns:      "ns." + DNSZone,
		Mbox:    "hostmaster." + DNSZone,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 60, Retry: 10, Expire: 600, Minttl: dnsTTL,
	}
}

func (d *DNS) recurse(req *dns.Msg, remote net.Addr) *dns.Msg {
	if len(d.Recursors) == 0 {
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeRefused)
		return resp
	}
	network := "udp"
	if _, ok := remote.(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	var lastErr error
	for _, r := range d.Recursors {
		resp, _, err := c.Exchange(req, r)
		if err == nil {
			return resp
		}
		lastErr = err
	}
	d.Logger.Warn("dns recursion failed", "name", req.Question[0].Name, "err", lastErr)
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeServerFailure)
	return resp
}

// ServeDNS serves d on an open UDP socket and TCP listener until ctx ends,
// then closes both.
func ServeDNS(ctx context.Context, udp net.PacketConn, tcp net.Listener, d *DNS) error {
	servers := []*dns.Server{
		{PacketConn: udp, Handler: d},
		{Listener: tcp, Handler: d},
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns: %w", err)
	}
	for _, s := range servers {
		_ = s.Shutdown()
	}
	return err
}
