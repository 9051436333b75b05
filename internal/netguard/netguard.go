// Package netguard keeps ringfence's outgoing webhooks (the incident webhook,
// status page subscribers) off internal networks: it refuses, at connect
// time and on the address actually dialled, loopback, private, link-local
// (cloud metadata), unique-local and other internal ranges, unless the
// operator allows private targets. That check after name resolution is
// what stops DNS rebinding; a check of the URL alone would not.
package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// blockedPrefixes are the address ranges a webhook may not reach unless
// private targets are allowed, besides what netip classifies as
// loopback, private (RFC 1918, fc00::/7), link-local (which holds the cloud
// metadata address 169.254.169.254), multicast and unspecified.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, often internal
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: maps to IPv4, which may be internal
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("100::/64"),       // discard-only
}

// PublicAddr reports whether a webhook may connect to a: a public unicast
// address, not one of the internal ranges.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// RefusePrivate is a net.Dialer Control function: it runs after name
// resolution, on the address actually being connected to, so a host name
// that resolves (or re-resolves) to an internal address is refused too.
func RefusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: unexpected address %q: %w", address, err)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("webhook: refusing to connect to non-public address %s (serve --webhook-allow-private allows it)", ap.Addr())
	}
	return nil
}

// NewClient returns an HTTP client for webhooks: each request bounded by
// timeout, at most maxIdle idle connections kept, no proxy from the environment (the guard must
// see the real destination), redirects not followed (a 3xx is a failed
// attempt) and, unless allowPrivate, connections only to public addresses.
func NewClient(timeout time.Duration, allowPrivate bool, maxIdle int) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = RefusePrivate
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          maxIdle,
			MaxIdleConnsPerHost:   maxIdle,
			IdleConnTimeout:       time.Minute,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
