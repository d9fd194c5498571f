//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Bounds of the DNS forwarder that environments use.
const (
	dnsMaxInFlight   = 256             // queries being forwarded at once; more are dropped
	dnsMaxTCPConns   = 64              // TCP connections from environments at once
	dnsUpstreamWait  = 2 * time.Second // per query and upstream resolver
	dnsTCPIdle       = 10 * time.Second
	dnsMaxTCPQueries = 128 // per TCP connection
)

// dnsForwarder answers environments' DNS queries on the gateway address by
// asking the host's resolvers. Environments cannot reach those themselves:
// they are often on the host's loopback (systemd-resolved's 127.0.0.53) or in
// a private range that the policy denies.
type dnsForwarder struct {
	upstreams []string // host:port, tried in order
	inFlight  chan struct{}
	log       *slog.Logger
	udp, tcp  *dns.Server
}

// startDNSForwarder serves DNS on addr:53 over UDP and TCP.
func startDNSForwarder(addr netip.Addr, upstreams []netip.AddrPort, log *slog.Logger) (*dnsForwarder, error) {
	f := &dnsForwarder{inFlight: make(chan struct{}, dnsMaxInFlight), log: log}
	for _, u := range upstreams {
		f.upstreams = append(f.upstreams, u.String())
	}
	listen := netip.AddrPortFrom(addr, 53).String()
	pc, err := net.ListenPacket("udp4", listen)
	if err != nil {
		return nil, fmt.Errorf("DNS forwarder: %w", err)
	}
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("DNS forwarder: %w", err)
	}
	f.udp = &dns.Server{PacketConn: pc, Handler: f}
	f.tcp = &dns.Server{Listener: netutil.LimitListener(ln, dnsMaxTCPConns), Handler: f,
		ReadTimeout: dnsUpstreamWait, WriteTimeout: dnsUpstreamWait, MaxTCPQueries: dnsMaxTCPQueries,
		IdleTimeout: func() time.Duration { return dnsTCPIdle }}
	for _, s := range []*dns.Server{f.udp, f.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				log.Warn("DNS forwarder stopped", "err", err)
			}
		}()
		<-started
	}
	return f, nil
}

// ServeDNS forwards one query to the first upstream resolver that answers,
// over the protocol it came on; SERVFAIL when none does.
func (f *dnsForwarder) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	select {
	case f.inFlight <- struct{}{}:
		defer func() { <-f.inFlight }()
	default:
		return // overloaded: the client asks again
	}
	client := &dns.Client{Net: "udp", Timeout: dnsUpstreamWait}
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		client.Net = "tcp"
	}
	for _, u := range f.upstreams {
		r, _, err := client.Exchange(q, u)
		if err == nil {
			_ = w.WriteMsg(r)
			return
		}
		f.log.Debug("DNS upstream failed", "upstream", u, "err", err)
	}
	fail := new(dns.Msg)
	fail.SetRcode(q, dns.RcodeServerFailure)
	_ = w.WriteMsg(fail)
}

// close stops serving.
func (f *dnsForwarder) close() {
	_ = f.udp.Shutdown()
	_ = f.tcp.Shutdown()
}

// hostResolvConf is the path of the host's resolver configuration.
const hostResolvConf = "/etc/resolv.conf"

// hostResolvers returns the name servers of the host's resolv.conf.
func hostResolvers() ([]netip.AddrPort, error) {
	cfg, err := dns.ClientConfigFromFile(hostResolvConf)
	if err != nil {
		return nil, err
	}
	var servers []netip.AddrPort
	for _, s := range cfg.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // a scoped IPv6 address, say: not usable from here
		}
		servers = append(servers, netip.AddrPortFrom(a, 53))
	}
	if len(servers) == 0 {
		return nil, errors.New(hostResolvConf + " names no name server")
	}
	return servers, nil
}

// envResolvConf is an environment's resolv.conf: the gateway as its only
// name server, and the host's search domains and options.
func envResolvConf(gateway netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nameserver %s\n", gateway)
	host, err := os.ReadFile(hostResolvConf)
	if err != nil {
		return b.String()
	}
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "search") || strings.HasPrefix(line, "domain") || strings.HasPrefix(line, "options") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
