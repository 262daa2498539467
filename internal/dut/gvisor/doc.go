// Package gvisor is kasim's built-in DUT driver for gVisor's netstack
// (docs/dut-protocol.md): it attaches a gVisor stack, running on the real
// clock, to the TAP device kasim gives it and makes the socket calls kasim
// asks for on tcpip.Endpoints, with the checks, conversions and error
// numbers gVisor's sentry applies to a Linux application's calls. Held
// against kasim's gvisor profile (the same netstack on a virtual clock), it
// shows whether the simulation keeps gVisor's real-time behaviour.
//
// kasim runs it with Run, in the driver process kasim starts in the lab's
// namespace. It needs Linux (a TAP device); elsewhere Run says so and fails.
package gvisor

import "kasim/internal/dut"

// Name is the driver's name, as kasim's --dut option and reports give it.
const Name = "gvisor"

// kasim conform --dut gvisor re-executes kasim as this driver
// (dut.MaybeRunBuiltin), so it ships inside kasim and needs nothing built.
func init() { dut.Register(Name, Run) }
