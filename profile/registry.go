package profile

import (
	"fmt"
	"strings"
)

// Registry holds the TCP/IP registry values (HKLM\SYSTEM\CurrentControlSet\
// Services\Tcpip\Parameters) that decide keep-alive behaviour.
type Registry struct {
	KeepAliveTime                 uint32 // ms before the first probe
	KeepAliveInterval             uint32 // ms between unanswered probes
	TcpMaxDataRetransmissions     uint32 // 2000/XP/2003: probe count (with the next)
	PPTPTcpMaxDataRetransmissions uint32 // 2000/XP/2003: probe count (with the previous)
	TcpMaxConnectRetransmissions  uint32 // 2000/XP/2003: SYN retransmissions of a connect
	TcpInitialRtt                 uint32 // 2000/XP/2003: ms before the first retransmission of a SYN
	set                           []string
}

// RegistryValue documents one registry value kasim models.
type RegistryValue struct {
	Name          string
	min, max, def uint64
	unit          string
	Doc           string
}

// RegistryValues lists the modelled registry values and their valid ranges
// (Microsoft's TCP/IP registry references for Windows 2000 and Server 2003).
var RegistryValues = []RegistryValue{
	{"KeepAliveTime", 1, 0xFFFFFFFF, 7200000, "ms", "idle time before the first keep-alive probe"},
	{"KeepAliveInterval", 1, 0xFFFFFFFF, 1000, "ms", "time between unanswered probes"},
	{"TcpMaxDataRetransmissions", 0, 0xFFFFFFFF, 5, "retransmissions", "2000/XP/2003: probe count, with PPTPTcpMaxDataRetransmissions; also limits data retransmissions"},
	{"PPTPTcpMaxDataRetransmissions", 0, 0xFF, 5, "retransmissions", "2000/XP/2003: probe count, with TcpMaxDataRetransmissions"},
	{"TcpMaxConnectRetransmissions", 0, 0xFF, 2, "retransmissions", "2000/XP/2003: how many times a connect's SYN is sent again"},
	{"TcpInitialRtt", 300, 0xFFFF, 3000, "ms", "2000/XP/2003: the delay before a SYN's first retransmission, doubled at each"},
}

func registryValue(name string) (RegistryValue, bool) {
	for _, v := range RegistryValues {
		if strings.EqualFold(v.Name, name) {
			return v, true
		}
	}
	return RegistryValue{}, false
}

// DefaultRegistry returns the values Windows uses when none is set.
func DefaultRegistry() Registry {
	return Registry{KeepAliveTime: 7200000, KeepAliveInterval: 1000, TcpMaxDataRetransmissions: 5, PPTPTcpMaxDataRetransmissions: 5,
		TcpMaxConnectRetransmissions: 2, TcpInitialRtt: 3000}
}

// Set returns the registry with name set to value. A value outside the
// range Windows accepts is an error naming the value and its range: kasim
// does not clamp what Windows would refuse.
func (r Registry) Set(name string, value uint64) (Registry, error) {
	v, ok := registryValue(name)
	if !ok {
		names := make([]string, len(RegistryValues))
		for i, v := range RegistryValues {
			names[i] = v.Name
		}
		return r, fmt.Errorf("unknown registry value %q (known: %s)", clip(name), strings.Join(names, ", "))
	}
	if value < v.min || value > v.max {
		return r, fmt.Errorf("%s=%d: out of range, valid %d to %d (%s)", v.Name, value, v.min, v.max, v.unit)
	}
	switch v.Name {
	case "KeepAliveTime":
		r.KeepAliveTime = uint32(value)
	case "KeepAliveInterval":
		r.KeepAliveInterval = uint32(value)
	case "TcpMaxDataRetransmissions":
		r.TcpMaxDataRetransmissions = uint32(value)
	case "PPTPTcpMaxDataRetransmissions":
		r.PPTPTcpMaxDataRetransmissions = uint32(value)
	case "TcpMaxConnectRetransmissions":
		r.TcpMaxConnectRetransmissions = uint32(value)
	case "TcpInitialRtt":
		r.TcpInitialRtt = uint32(value)
	}
	r.set = append(append([]string(nil), r.set...), v.Name)
	return r, nil
}

func (r Registry) get(name string) uint32 {
	switch name {
	case "KeepAliveTime":
		return r.KeepAliveTime
	case "KeepAliveInterval":
		return r.KeepAliveInterval
	case "TcpMaxDataRetransmissions":
		return r.TcpMaxDataRetransmissions
	case "TcpMaxConnectRetransmissions":
		return r.TcpMaxConnectRetransmissions
	case "TcpInitialRtt":
		return r.TcpInitialRtt
	}
	return r.PPTPTcpMaxDataRetransmissions
}

func (r Registry) isSet(name string) bool {
	for _, s := range r.set {
		if s == name {
			return true
		}
	}
	return false
}
