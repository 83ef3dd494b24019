package webhooksout

import (
	"fmt"
	"net/netip"
)

// blockedRange is one range of addresses a webhook never goes to, with why.
type blockedRange struct {
	prefix netip.Prefix
	what   string
	// always keeps the range refused even when private addresses are allowed.
	always bool
}

// blockedRanges are the addresses refused unless private addresses are allowed: none of them is a
// store's public receiver, and all of them can reach something of the ledger's own network. IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) are checked as their IPv4 address, and NAT64 ones (64:ff9b::/96,
// RFC 6052) as the IPv4 address they embed.
var blockedRanges = []blockedRange{
	// The cloud metadata services: AWS, GCP, Azure, Oracle and others on 169.254.169.254, AWS's IPv6
	// one on fd00:ec2::254. They hand out credentials; no setting opens them.
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address", true},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address", true},
	// The other services that hand out cloud credentials: AWS ECS task credentials (169.254.170.2),
	// the EKS Pod Identity agent (169.254.170.23, fd00:ec2::23), Alibaba Cloud's metadata service
	// (100.100.100.200).
	{netip.MustParsePrefix("169.254.170.2/32"), "a cloud credentials address", true},
	{netip.MustParsePrefix("169.254.170.23/32"), "a cloud credentials address", true},
	{netip.MustParsePrefix("fd00:ec2::23/128"), "a cloud credentials address", true},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address", true},
	// Azure's WireServer (168.63.129.16, a public address), GCE's IPv6 metadata server (fd20:ce::254),
	// Tencent Cloud's metadata server (169.254.0.23).
	{netip.MustParsePrefix("168.63.129.16/32"), "a cloud platform address (Azure WireServer)", true},
	{netip.MustParsePrefix("fd20:ce::254/128"), "a cloud metadata address", true},
	{netip.MustParsePrefix("169.254.0.23/32"), "a cloud metadata address", true},

	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\", RFC 1122)", false},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)", false},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT, RFC 6598)", false},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122)", false},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)", false},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)", false},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)", false},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)", false},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)", false},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (RFC 5771)", false},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast (RFC 1112, RFC 919)", false},

	{netip.MustParsePrefix("::/128"), "unspecified (RFC 4291)", false},
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291)", false},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible, deprecated (RFC 4291)", false},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)", false},
	{netip.MustParsePrefix("fc00::/7"), "unique local, private (RFC 4193)", false},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291)", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated (RFC 3879)", false},
	{netip.MustParsePrefix("ff00::/8"), "multicast (RFC 4291)", false},
	// Ranges that carry an IPv4 address to a translator or tunnel, which could lead anywhere on the
	// ledger's own network: local-use NAT64 (RFC 8215), 6to4 (RFC 3056) and Teredo (RFC 4380). Their
	// embedded IPv4 address is checked too (below), so a metadata address inside stays refused always.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215)", false},
	{netip.MustParsePrefix("2002::/16"), "6to4, an IPv4 address in IPv6 (RFC 3056)", false},
	{netip.MustParsePrefix("2001::/32"), "Teredo tunnelling (RFC 4380)", false},
}

var (
	nat64        = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052: the IPv4 address in the last 32 bits
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215: as RFC 6052 with a /96 prefix
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 (SIIT): the IPv4 address in the last 32 bits
	sixToFour    = netip.MustParsePrefix("2002::/16")       // RFC 3056: the IPv4 address in bits 16–47
)

// AddressError is the refusal of an address a webhook may not go to: Addr is the address as dialled or
// written in the URL, Range says which kind of address it is and its RFC.
type AddressError struct {
	Addr  netip.Addr
	Range string
}

// Error says which address was refused and why: "address 127.0.0.1 is refused: loopback (RFC 1122)".
func (e *AddressError) Error() string {
	return fmt.Sprintf("address %s is refused: %s", e.Addr, e.Range)
}

// CheckAddr returns an *AddressError if a webhook may not go to addr, nil if it may. Refused: loopback,
// private (RFC 1918, RFC 4193), link-local, carrier-grade NAT, unspecified, multicast, broadcast and
// other reserved ranges (the table in address.go), unless allowPrivate; the cloud metadata and
// credentials addresses (169.254.169.254, fd00:ec2::254, 169.254.170.2, 169.254.170.23, fd00:ec2::23,
// 100.100.100.200, 168.63.129.16, fd20:ce::254, 169.254.0.23) always. An invalid (zero) address is refused too.
func CheckAddr(addr netip.Addr, allowPrivate bool) error {
	if !addr.IsValid() {
		return &AddressError{Addr: addr, Range: "not an IP address"}
	}
	ip := addr.WithZone("").Unmap()
	// An IPv6 address that carries an IPv4 one is refused for its own range (below) and for the IPv4
	// address it carries: a metadata address inside a translation prefix is still a metadata address.
	candidates := []netip.Addr{ip}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip), nat64Local.Contains(ip), v4Translated.Contains(ip):
			candidates = append(candidates, netip.AddrFrom4([4]byte(b[12:])))
		case sixToFour.Contains(ip):
			candidates = append(candidates, netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, c := range candidates {
		for _, r := range blockedRanges {
			if r.prefix.Contains(c) && (r.always || !allowPrivate) {
				return &AddressError{Addr: addr, Range: r.what}
			}
		}
	}
	return nil
}
