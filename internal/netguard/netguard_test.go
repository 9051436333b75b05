package netguard

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8":              true,
		"93.184.215.14":        true,
		"2606:4700:4700::1111": true,
		"127.0.0.1":            false,
		"127.9.9.9":            false,
		"::1":                  false,
		"10.1.2.3":             false,
		"172.16.0.1":           false,
		"172.31.255.255":       false,
		"192.168.1.1":          false,
		"169.254.169.254":      false, // cloud metadata
		"fd00:ec2::254":        false, // AWS metadata over IPv6
		"fe80::1":              false,
		"fc00::1":              false,
		"0.0.0.0":              false,
		"0.1.2.3":              false,
		"::":                   false,
		"::ffff:127.0.0.1":     false, // IPv4-mapped loopback
		"::ffff:10.0.0.1":      false,
		"100.64.0.1":           false,
		"224.0.0.1":            false,
		"255.255.255.255":      false,
		"64:ff9b::7f00:1":      false, // NAT64 of 127.0.0.1
		"2002:7f00:1::1":       false, // 6to4 of 127.0.0.1
		"ff02::1":              false,
		"172.32.0.1":           true,
		"::ffff:93.184.215.14": true,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestRefusePrivateChecksTheDialedAddress(t *testing.T) {
	if err := RefusePrivate("tcp", "127.0.0.1:8080", nil); err == nil {
		t.Error("loopback address accepted")
	}
	if err := RefusePrivate("tcp6", "[2606:4700:4700::1111]:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	if err := RefusePrivate("tcp", "not-an-address", nil); err == nil {
		t.Error("unparsable address accepted")
	}
}
