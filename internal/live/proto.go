package live

// The peer helper speaks JSON, one object per line: requests on its
// standard input, replies and asynchronous reports on its standard output.
// Every reply carries the id of its request; a report carries the id of the
// request that started the operation and a non-empty event. Every reply and
// report carries t, the helper's CLOCK_MONOTONIC reading in nanoseconds
// taken right after the system call returned.
//
// Requests (fields besides id and op):
//
//	setup       ifname, addr (prefix), neigh_ip, neigh_mac: configure the
//	            veth end; ret = nanoseconds until its carrier was up
//	socket                      ret = new fd (AF_INET, SOCK_STREAM)
//	setsockopt  fd, level, opt, value
//	getsockopt  fd, level, opt  ret = the value
//	bind        fd, addr ("ip:port")
//	listen      fd, n (backlog)
//	connect     fd, addr        non-blocking: errno EINPROGRESS, then a
//	                            "connect" report; the socket is made
//	                            blocking again once it is connected
//	accept      fd              blocking accept in the background; an
//	                            "accept" report with ret = new fd
//	send        fd, n           n octets, never blocking; ret = octets queued
//	recv        fd, n           a blocking recv of up to n octets in the
//	                            background; a "recv" report
//	shutdown    fd, n (how)
//	close       fd
//	exec        argv            start a program in the peer namespace;
//	                            ret = pid, then an "exit" report
//
// The first line the helper writes is a "hello" report with its pid in ret.
// A request the helper cannot carry out at all (bad JSON, an unknown op, a
// missing field) gets a reply with fail set; a system call that fails is
// not that: it gets errno and errno_name.

const (
	opSetup      = "setup"
	opSocket     = "socket"
	opSetsockopt = "setsockopt"
	opGetsockopt = "getsockopt"
	opBind       = "bind"
	opListen     = "listen"
	opConnect    = "connect"
	opAccept     = "accept"
	opSend       = "send"
	opRecv       = "recv"
	opShutdown   = "shutdown"
	opClose      = "close"
	opExec       = "exec"

	eventHello = "hello"
)

type request struct {
	ID       uint64   `json:"id"`
	Op       string   `json:"op"`
	FD       int      `json:"fd,omitempty"`
	Level    int      `json:"level,omitempty"`
	Opt      int      `json:"opt,omitempty"`
	Value    int      `json:"value,omitempty"`
	Addr     string   `json:"addr,omitempty"`
	N        int      `json:"n,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Env      []string `json:"env,omitempty"`
	Ifname   string   `json:"ifname,omitempty"`
	NeighIP  string   `json:"neigh_ip,omitempty"`
	NeighMAC string   `json:"neigh_mac,omitempty"`
}

type message struct {
	ID        uint64 `json:"id"`
	Event     string `json:"event,omitempty"`
	FD        int    `json:"fd"`
	Ret       int    `json:"ret"`
	Errno     int    `json:"errno,omitempty"`
	ErrnoName string `json:"errno_name,omitempty"`
	T         int64  `json:"t"`
	Detail    string `json:"detail,omitempty"`
	Fail      string `json:"fail,omitempty"`
}
