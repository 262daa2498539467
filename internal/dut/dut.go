// Package dut is the wire format of kasim's DUT driver protocol
// (docs/dut-protocol.md): the JSON lines kasim and a driver for a stack
// under test exchange over the driver's standard input and output. The
// machine's kernel (internal/live's helper), gVisor (internal/dut/gvisor)
// and lwIP (drivers/lwip) all speak it.
package dut

// Version is the protocol version kasim speaks (KASIM_DUT_PROTOCOL).
const Version = 1

// The operations a request names.
const (
	OpSocket     = "socket"
	OpSetsockopt = "setsockopt"
	OpGetsockopt = "getsockopt"
	OpBind       = "bind"
	OpListen     = "listen"
	OpConnect    = "connect"
	OpAccept     = "accept"
	OpSend       = "send"
	OpRecv       = "recv"
	OpShutdown   = "shutdown"
	OpClose      = "close"
)

// The events a driver reports: its hello, and the outcome of a call that
// was started earlier.
const (
	EventHello   = "hello"
	EventConnect = "connect"
	EventAccept  = "accept"
	EventRecv    = "recv"
)

// APIPOSIX is the socket API a hello names (the only one in version 1).
const APIPOSIX = "posix"

// Option levels and options, by the names requests carry: a driver maps
// them with its own system's headers.
const (
	SOL_SOCKET  = "SOL_SOCKET"
	IPPROTO_TCP = "IPPROTO_TCP"

	SO_KEEPALIVE     = "SO_KEEPALIVE"
	TCP_KEEPIDLE     = "TCP_KEEPIDLE"
	TCP_KEEPINTVL    = "TCP_KEEPINTVL"
	TCP_KEEPCNT      = "TCP_KEEPCNT"
	TCP_USER_TIMEOUT = "TCP_USER_TIMEOUT"
	TCP_SYNCNT       = "TCP_SYNCNT"       // Linux's: SYN retransmissions for a connect
	TCP_DEFER_ACCEPT = "TCP_DEFER_ACCEPT" // Linux's, on a listener: no accept before data, in seconds
	TCP_KEEPALIVE    = "TCP_KEEPALIVE"    // lwIP's: the idle time in milliseconds
)

// Environment variables kasim starts a driver with.
const (
	EnvProtocol   = "KASIM_DUT_PROTOCOL"
	EnvIf         = "KASIM_DUT_IF"
	EnvAddr       = "KASIM_DUT_ADDR"
	EnvMAC        = "KASIM_DUT_MAC"
	EnvTesterAddr = "KASIM_TESTER_ADDR"
	EnvTesterMAC  = "KASIM_TESTER_MAC"
)

// Request is one line kasim writes. FD, Value and N are always present
// (0 is a valid handle, value and backlog).
type Request struct {
	ID    uint64 `json:"id"`
	Op    string `json:"op"`
	FD    int    `json:"fd"`
	Level string `json:"level,omitempty"`
	Opt   string `json:"opt,omitempty"`
	Value int    `json:"value"`
	Addr  string `json:"addr,omitempty"`
	N     int    `json:"n"`

	// Operations only kasim's own kernel helper knows (internal/live):
	// setting up its link, and starting programs beside it.
	Argv     []string `json:"argv,omitempty"`
	Env      []string `json:"env,omitempty"`
	Ifname   string   `json:"ifname,omitempty"`
	MAC      string   `json:"mac,omitempty"`
	NeighIP  string   `json:"neigh_ip,omitempty"`
	NeighMAC string   `json:"neigh_mac,omitempty"`
}

// Message is one line a driver writes: a hello, a reply (ID set, Event
// empty) or a report (Event set).
type Message struct {
	ID        uint64 `json:"id"`
	Event     string `json:"event,omitempty"`
	FD        int    `json:"fd"`
	Ret       int    `json:"ret"`
	Errno     int    `json:"errno,omitempty"`
	ErrnoName string `json:"errno_name,omitempty"`
	T         int64  `json:"t"`
	Detail    string `json:"detail,omitempty"`
	Fail      string `json:"fail,omitempty"`

	// The hello's.
	Protocol int      `json:"protocol,omitempty"`
	Stack    string   `json:"stack,omitempty"`
	Version  string   `json:"version,omitempty"`
	API      string   `json:"api,omitempty"`
	Options  []string `json:"options,omitempty"`
}
