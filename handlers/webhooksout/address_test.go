package webhooksout_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		// refused without allowPrivate; always: refused with it too.
		refused, always bool
	}{
		{"8.8.8.8", false, false},
		{"1.1.1.1", false, false},
		{"2606:4700:4700::1111", false, false},
		{"172.32.0.1", false, false},       // just past 172.16/12
		{"100.128.0.1", false, false},      // just past 100.64/10
		{"64:ff9b::808:808", false, false}, // NAT64 of 8.8.8.8

		{"127.0.0.1", true, false},
		{"127.255.255.254", true, false},
		{"::1", true, false},
		{"0.0.0.0", true, false},
		{"::", true, false},
		{"10.1.2.3", true, false},
		{"172.16.0.1", true, false},
		{"172.31.255.255", true, false},
		{"192.168.1.1", true, false},
		{"100.64.0.1", true, false},
		{"100.100.100.200", true, true}, // Alibaba's metadata, inside the carrier-grade NAT range
		{"169.254.170.2", true, true},   // AWS ECS task credentials
		{"169.254.170.23", true, true},  // EKS Pod Identity
		{"fd00:ec2::23", true, true},    // EKS Pod Identity, IPv6
		{"169.254.1.1", true, false},
		{"fe80::1", true, false},
		{"fe80::1%eth0", true, false},
		{"fc00::1", true, false},
		{"fd12:3456::1", true, false},
		{"224.0.0.1", true, false},
		{"239.255.255.250", true, false},
		{"ff02::1", true, false},
		{"255.255.255.255", true, false},
		{"::ffff:127.0.0.1", true, false},  // IPv4-mapped loopback
		{"::ffff:10.0.0.1", true, false},   // IPv4-mapped private
		{"64:ff9b::7f00:1", true, false},   // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true, true}, // NAT64 of 169.254.169.254
		{"169.254.169.254", true, true},    // metadata: refused even when private addresses are allowed
		{"::ffff:169.254.169.254", true, true},
		{"fd00:ec2::254", true, true},
	} {
		addr := netip.MustParseAddr(tt.addr)
		err := webhooksout.CheckAddr(addr, false)
		if (err != nil) != tt.refused {
			t.Errorf("CheckAddr(%s, false) = %v, want refused %v", tt.addr, err, tt.refused)
		}
		var ae *webhooksout.AddressError
		if err != nil && (!errors.As(err, &ae) || ae.Addr != addr || ae.Range == "") {
			t.Errorf("CheckAddr(%s) = %#v, want an *AddressError naming the address and its range", tt.addr, err)
		}
		if err := webhooksout.CheckAddr(addr, true); (err != nil) != tt.always {
			t.Errorf("CheckAddr(%s, true) = %v, want refused %v", tt.addr, err, tt.always)
		}
	}
	if webhooksout.CheckAddr(netip.Addr{}, true) == nil {
		t.Error("the zero Addr is allowed")
	}
}
