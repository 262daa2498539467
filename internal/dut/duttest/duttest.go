// Package duttest is the kit a DUT driver's own tests share (drivers/lwip,
// internal/dut/gvisor): the lab kasim would give the driver, a capture of
// the wire, and a protocol client that plays kasim's side of
// docs/dut-protocol.md and fails the test, with the driver's standard
// error, when the driver breaks the protocol or keeps a test waiting.
//
// It is a package of its own, not a _test.go file, so that tests in other
// packages can import it; only tests do (as with internal/livetest).
//
// The lab (NewLab, Linux only) is a network namespace with no name, made
// on a locked OS thread, holding the TAP device kd0 whose kernel side plays
// kasim's tester; everything it makes goes in the test's cleanup. Building
// one needs root: NewLab skips the test otherwise, or fails it where
// KASIM_REQUIRE_LIVE is set (internal/livetest).
package duttest

import (
	"bytes"
	"sort"
	"strconv"
	"sync"

	"kasim/internal/dut"
)

// The lab's link, as kasim's lab has it (internal/live: Options.resolve's
// default addresses, macFor's MAC for each: 02:00 and the IPv4 address).
const (
	IfName     = "kd0"               // the TAP device the driver attaches to
	DUTPrefix  = "10.99.0.2/24"      // KASIM_DUT_ADDR
	DUTAddr    = "10.99.0.2"         // the driver's stack
	DUTMAC     = "02:00:0a:63:00:02" // KASIM_DUT_MAC
	TesterAddr = "10.99.0.1"         // KASIM_TESTER_ADDR: the kernel's side of kd0
	TesterMAC  = "02:00:0a:63:00:01" // KASIM_TESTER_MAC
)

// Env is the environment kasim starts a driver with in this lab, by
// variable (internal/dut's Env* names). It is a new map on every call.
func Env() map[string]string {
	return map[string]string{
		dut.EnvProtocol:   strconv.Itoa(dut.Version),
		dut.EnvIf:         IfName,
		dut.EnvAddr:       DUTPrefix,
		dut.EnvMAC:        DUTMAC,
		dut.EnvTesterAddr: TesterAddr,
		dut.EnvTesterMAC:  TesterMAC,
	}
}

// Getenv looks k up in Env, as os.Getenv would in the driver's process.
func Getenv(k string) string { return Env()[k] }

// Environ is Env as "K=V" strings, sorted, for exec.Cmd.Env.
func Environ() []string {
	var env []string
	for k, v := range Env() {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// SyncBuffer is a bytes.Buffer that a driver may write (its standard
// error) while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail is the end of s, at most n bytes, for a failure message.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
