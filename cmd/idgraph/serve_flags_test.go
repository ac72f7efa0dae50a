package main

import (
	"net/netip"
	"slices"
	"testing"
)

// --trusted-proxies takes addresses and CIDR ranges and nothing else;
// --public-url takes an absolute http(s) URL.
func TestServeProxyAndPublicURLFlags(t *testing.T) {
	got, err := parseProxies(" 10.0.0.0/8, 192.168.1.7 ,::1, 172.16.5.9/12")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("172.16.0.0/12")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseProxies = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "*", "10.0.0.0/8,nope"} {
		if _, err := parseProxies(bad); err == nil {
			t.Errorf("parseProxies(%q) accepted", bad)
		}
	}
	if got, err := parseProxies(""); err != nil || len(got) != 0 {
		t.Errorf("no proxies: %v, %v", got, err)
	}
	for url, ok := range map[string]bool{"": true, "https://idgraph.example.com": true, "http://10.0.0.1:8080/": true,
		"idgraph.example.com": false, "ftp://x": false, "https://": false, "/console/": false} {
		if err := checkPublicURL(url); (err == nil) != ok {
			t.Errorf("checkPublicURL(%q) = %v", url, err)
		}
	}
}
