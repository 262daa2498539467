package live

import "kasim/internal/dut"

// The peer speaks kasim's DUT driver protocol (docs/dut-protocol.md,
// package dut): JSON, one object per line, requests on its standard input,
// replies and asynchronous reports on its standard output. Every reply
// carries the id of its request; a report carries the id of the request
// that started the operation and a non-empty event. Every reply and report
// carries t, the peer's CLOCK_MONOTONIC reading in nanoseconds taken right
// after the call returned.
//
// The peer is kasim's own helper (the linux driver: the machine's kernel,
// making real system calls) or, in a lab built with Options.DUT, a driver
// program the helper became: the helper sets up the namespace and its TAP
// device, then executes the driver in its own place, handing it its
// standard input and output.
//
// Besides the protocol's operations, kasim's helper knows these:
//
//	setup   ifname, addr (prefix), neigh_ip, neigh_mac: configure the
//	        veth end; ret = nanoseconds until its carrier was up
//	tap     ifname, mac: create a TAP device, up, with the tester's MAC
//	        and no address, for a driver to attach to (MakeTAP)
//	become  argv, env: reply, then execute argv in the helper's place;
//	        its hello follows
//	exec    argv, env: start a program in the peer namespace; ret = pid,
//	        then "output" reports for its lines and an "exit" report
//	sysctl  opt, value: set the peer namespace's net.ipv4.<opt> (one of
//	        Sysctls: per-namespace TCP settings, nothing machine-wide);
//	        ret = the value it had
//
// The first line the helper writes is a hello, as every driver's is. A
// request the peer cannot carry out at all (bad JSON, an unknown op, a
// missing field) gets a reply with fail set; a system call that fails is
// not that: it gets errno and errno_name.

type (
	request = dut.Request
	message = dut.Message
)

const (
	opSetup  = "setup"
	opTap    = "tap"
	opBecome = "become"
	opExec   = "exec"
	opSysctl = "sysctl"

	opSocket     = dut.OpSocket
	opSetsockopt = dut.OpSetsockopt
	opGetsockopt = dut.OpGetsockopt
	opBind       = dut.OpBind
	opListen     = dut.OpListen
	opConnect    = dut.OpConnect
	opAccept     = dut.OpAccept
	opSend       = dut.OpSend
	opRecv       = dut.OpRecv
	opShutdown   = dut.OpShutdown
	opClose      = dut.OpClose

	eventHello = dut.EventHello
)
