package sockopt

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"kasim/stack"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("runtime.runCleanups"))
}

// Feature sets of representative Windows versions (sim derives them from
// the profile package; here they are spelled out).
var (
	xp      = Features{Idle: 2 * time.Hour, Interval: time.Second, ProbeCount: 5}
	vista   = Features{Idle: 2 * time.Hour, Interval: time.Second, ProbeCount: 10, RejectDuringConnect: true}
	win1607 = vista
	win1703 = Features{Idle: 2 * time.Hour, Interval: time.Second, ProbeCount: 10, RejectDuringConnect: true, KeepCnt: true}
	win1709 = Features{Idle: 2 * time.Hour, Interval: time.Second, ProbeCount: 10, RejectDuringConnect: true, KeepCnt: true, KeepIdle: true}
)

type rig struct {
	net    *stack.Network
	client *stack.Host
	server *stack.Host
	ws     *Winsock
	calls  []Call
}

func newRig(t *testing.T, f Features) *rig {
	t.Helper()
	return newRigWith(t, f, stack.Behaviour{})
}

// newRigWith is newRig with a client of behaviour b, which arms keep-alive
// at the handshake as Windows does.
func newRigWith(t *testing.T, f Features, b stack.Behaviour) *rig {
	t.Helper()
	b.ArmAtEstablishment = true
	r := &rig{net: stack.NewNetwork(stack.Config{Seed: 1, Latency: 10 * time.Millisecond})}
	t.Cleanup(r.net.Close)
	r.client, _ = r.net.AddHostWith("client", stack.HostOptions{Behaviour: b})
	r.server, _ = r.net.AddHost("server")
	if _, err := r.server.Listen("tcp4", 80, stack.KeepAlive{}, nil); err != nil {
		t.Fatal(err)
	}
	r.ws = NewWinsock(r.client, f)
	r.ws.OnCall = func(c Call) { r.calls = append(r.calls, c) }
	return r
}

func (r *rig) started(t *testing.T) *rig {
	t.Helper()
	if r.ws.WSAStartup(0x0202) != 0 {
		t.Fatal("WSAStartup failed")
	}
	return r
}

func (r *rig) stream(t *testing.T) SOCKET {
	t.Helper()
	s := r.ws.Socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
	if s == INVALID_SOCKET {
		t.Fatalf("socket: %v", r.ws.LastError())
	}
	return s
}

func (r *rig) addr() netip.AddrPort { return netip.AddrPortFrom(r.server.Addr(), 80) }

func dword(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func keepaliveVals(on, ms, intvl uint32) []byte {
	b := dword(on)
	b = binary.LittleEndian.AppendUint32(b, ms)
	return binary.LittleEndian.AppendUint32(b, intvl)
}

// wantErr checks a call failed with SOCKET_ERROR and e.
func wantErr(t *testing.T, what string, got int, w *Winsock, e WSAError) {
	t.Helper()
	if got != SOCKET_ERROR || w.WSAGetLastError() != e.Code {
		t.Errorf("%s = %d, WSAGetLastError %d (%s); want SOCKET_ERROR and %s", what, got, w.WSAGetLastError(), w.LastError().Name, e)
	}
}

func TestSeed_WSANOTINITIALISED_BeforeWSAStartup(t *testing.T) {
	r := newRig(t, vista)
	if s := r.ws.Socket(AF_INET, SOCK_STREAM, IPPROTO_TCP); s != INVALID_SOCKET || r.ws.WSAGetLastError() != 10093 {
		t.Errorf("socket before WSAStartup = %v, error %d; want INVALID_SOCKET, 10093", s, r.ws.WSAGetLastError())
	}
	wantErr(t, "setsockopt before WSAStartup", r.ws.Setsockopt(0x104, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSANOTINITIALISED)
	wantErr(t, "WSACleanup before WSAStartup", r.ws.WSACleanup(), r.ws, WSANOTINITIALISED)
	r.started(t)
	s := r.stream(t)
	if r.ws.WSACleanup() != 0 {
		t.Fatal("WSACleanup failed")
	}
	wantErr(t, "setsockopt after WSACleanup", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSANOTINITIALISED)
}

func TestSeed_WSAENETDOWN_NetworkSubsystemFailed(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	r.ws.SetNetworkDown(true)
	wantErr(t, "setsockopt", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAENETDOWN)
	n := 4
	wantErr(t, "getsockopt", r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, make([]byte, 4), &n), r.ws, WSAENETDOWN)
	r.ws.SetNetworkDown(false)
	if r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4) != 0 {
		t.Errorf("setsockopt after the network came back: %v", r.ws.LastError())
	}
}

func TestSeed_WSAEFAULT_BadBufferOrShortOptlen(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	wantErr(t, "setsockopt(optval NULL)", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, nil, 4), r.ws, WSAEFAULT)
	wantErr(t, "setsockopt(optlen 3)", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 3), r.ws, WSAEFAULT)
	wantErr(t, "setsockopt(optlen beyond the buffer)", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 8), r.ws, WSAEFAULT)
	buf := []byte{0xAA, 0xBB, 0xCC, 0xDD}
	n := 3
	wantErr(t, "getsockopt(optlen 3)", r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, buf, &n), r.ws, WSAEFAULT)
	if !bytes.Equal(buf, []byte{0xAA, 0xBB, 0xCC, 0xDD}) || n != 3 {
		t.Errorf("getsockopt with optlen 3 touched the buffer: % x, optlen %d", buf, n)
	}
	wantErr(t, "getsockopt(optlen NULL)", r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, buf, nil), r.ws, WSAEFAULT)
	var ret uint32
	wantErr(t, "WSAIoctl(short tcp_keepalive)", r.ws.WSAIoctl(s, SIO_KEEPALIVE_VALS, dword(1), nil, &ret), r.ws, WSAEFAULT)
}

func TestSeed_WSAEINPROGRESS_BlockingCallInProgress(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	r.ws.SetBlockingCall(s, true)
	wantErr(t, "setsockopt", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAEINPROGRESS)
	r.ws.SetBlockingCall(s, false)
	if r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4) != 0 {
		t.Error("setsockopt failed once the blocking call ended")
	}
}

func TestSeed_WSAEINVAL_UnknownLevel(t *testing.T) {
	for _, f := range []Features{xp, vista, win1709} {
		r := newRig(t, f).started(t)
		s := r.stream(t)
		wantErr(t, "setsockopt(level 0x1234)", r.ws.Setsockopt(s, 0x1234, SO_KEEPALIVE, dword(1), 4), r.ws, WSAEINVAL)
	}
}

func TestSeed_WSAEINVAL_VistaAndLaterDuringConnect_OptionUnchanged(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	wantErr(t, "connect", r.ws.Connect(s, r.addr()), r.ws, WSAEWOULDBLOCK)
	if st := r.ws.Conn(s).State(); st != stack.SynSent {
		t.Fatalf("state %s, want SYN-SENT", st)
	}
	wantErr(t, "setsockopt(SO_KEEPALIVE) during connect", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAEINVAL)
	got, n := make([]byte, 4), 4
	if r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, got, &n) != 0 || binary.LittleEndian.Uint32(got) != 0 {
		t.Errorf("SO_KEEPALIVE reads %v after the failed set, want 0", got)
	}
	if err := r.net.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if r.ws.Conn(s).KeepAlive().Enabled {
		t.Error("keep-alive is on in the stack after a failed set")
	}
	// Once connected, the same call works.
	if r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4) != 0 {
		t.Errorf("setsockopt once connected: %v", r.ws.LastError())
	}
}

func TestSeed_LegacyAcceptsDuringConnect_TakesEffectOnceConnected(t *testing.T) {
	r := newRig(t, xp).started(t)
	s := r.stream(t)
	r.ws.Connect(s, r.addr())
	if r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4) != 0 {
		t.Fatalf("XP setsockopt during connect: %v", r.ws.LastError())
	}
	if err := r.net.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	r.net.Silence(r.server, stack.Both)
	probes := 0
	r.net.Observe(probeCounter{&probes})
	if err := r.net.RunFor(3 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if probes != 5 {
		t.Errorf("%d probes, want XP's 5", probes)
	}
}

type probeCounter struct{ n *int }

func (p probeCounter) Segment(s *stack.Segment) {
	if s.Probe {
		*p.n++
	}
}
func (probeCounter) Deliver(*stack.Segment)  {}
func (probeCounter) State(stack.StateChange) {}
func (probeCounter) Link(stack.LinkChange)   {}

func TestSeed_WSAENOPROTOOPT_DatagramSocketOrMissingOption(t *testing.T) {
	r := newRig(t, vista).started(t)
	d := r.ws.Socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)
	if d == INVALID_SOCKET {
		t.Fatal(r.ws.LastError())
	}
	wantErr(t, "setsockopt(SO_KEEPALIVE) on a datagram socket", r.ws.Setsockopt(d, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAENOPROTOOPT)
	n := 4
	wantErr(t, "getsockopt on a datagram socket", r.ws.Getsockopt(d, SOL_SOCKET, SO_KEEPALIVE, make([]byte, 4), &n), r.ws, WSAENOPROTOOPT)
	var ret uint32
	wantErr(t, "WSAIoctl on a datagram socket", r.ws.WSAIoctl(d, SIO_KEEPALIVE_VALS, keepaliveVals(1, 1000, 1000), nil, &ret), r.ws, WSAENOPROTOOPT)
	s := r.stream(t)
	wantErr(t, "setsockopt(SOL_SOCKET, 0x4242)", r.ws.Setsockopt(s, SOL_SOCKET, 0x4242, dword(1), 4), r.ws, WSAENOPROTOOPT)
}

func TestSeed_TCPKEEPCNTFrom1703_TCPKEEPIDLEFrom1709(t *testing.T) {
	for _, tc := range []struct {
		name          string
		f             Features
		keepCnt, idle bool
	}{{"1607", win1607, false, false}, {"1703", win1703, true, false}, {"1709", win1709, true, true}} {
		r := newRig(t, tc.f).started(t)
		s := r.stream(t)
		for _, opt := range []struct {
			name  string
			id    int
			works bool
		}{{"TCP_KEEPCNT", TCP_KEEPCNT, tc.keepCnt}, {"TCP_KEEPIDLE", TCP_KEEPIDLE, tc.idle}, {"TCP_KEEPINTVL", TCP_KEEPINTVL, tc.idle}} {
			got := r.ws.Setsockopt(s, IPPROTO_TCP, opt.id, dword(5), 4)
			if opt.works && got != 0 {
				t.Errorf("Windows 10 %s: %s failed with %v", tc.name, opt.name, r.ws.LastError())
			}
			if !opt.works {
				wantErr(t, "Windows 10 "+tc.name+": "+opt.name, got, r.ws, WSAENOPROTOOPT)
			}
		}
	}
}

func TestTCPKEEPCNTAbove255IsIllegal(t *testing.T) {
	r := newRig(t, win1703).started(t)
	s := r.stream(t)
	wantErr(t, "TCP_KEEPCNT 256", r.ws.Setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, dword(256), 4), r.ws, WSAEINVAL)
	if r.ws.Setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, dword(255), 4) != 0 {
		t.Error("TCP_KEEPCNT 255 refused")
	}
	got, n := make([]byte, 4), 4
	if r.ws.Getsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, got, &n) != 0 || binary.LittleEndian.Uint32(got) != 255 {
		t.Errorf("TCP_KEEPCNT reads %v, want 255", got)
	}
}

func TestSeed_WSAENOTSOCK_NotASocket(t *testing.T) {
	r := newRig(t, vista).started(t)
	wantErr(t, "setsockopt on an invented handle", r.ws.Setsockopt(0xBEEF, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAENOTSOCK)
	s := r.stream(t)
	if r.ws.Closesocket(s) != 0 {
		t.Fatal("closesocket failed")
	}
	wantErr(t, "setsockopt on a closed handle", r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4), r.ws, WSAENOTSOCK)
	n := 4
	wantErr(t, "getsockopt on a closed handle", r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, make([]byte, 4), &n), r.ws, WSAENOTSOCK)
	var ret uint32
	wantErr(t, "WSAIoctl on a closed handle", r.ws.WSAIoctl(s, SIO_KEEPALIVE_VALS, keepaliveVals(1, 1, 1), nil, &ret), r.ws, WSAENOTSOCK)
}

func TestSeed_OptvalIsABooleanAnyNonZeroIsTrue(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	for _, v := range []uint32{2, 0x80000000, 1} {
		if r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(v), 4) != 0 {
			t.Fatal(r.ws.LastError())
		}
		got, n := make([]byte, 4), 4
		if r.ws.Getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, got, &n) != 0 || binary.LittleEndian.Uint32(got) != 1 || n != 4 {
			t.Errorf("set %#x, read %v (optlen %d); want TRUE (1), optlen 4", v, got, n)
		}
	}
	r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(0), 4)
	if r.ws.Conn(s).KeepAlive().Enabled {
		t.Error("keep-alive still on after setting FALSE")
	}
}

func TestSIOKeepaliveValsOnALiveConnection(t *testing.T) {
	r := newRigWith(t, vista, stack.Behaviour{ProbePayload: 1}).started(t)
	var probes []time.Duration
	r.net.Observe(probeTimes{&probes})
	s := r.stream(t)
	r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 4)
	r.ws.Connect(s, r.addr())
	if err := r.net.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	var ret uint32
	if r.ws.WSAIoctl(s, SIO_KEEPALIVE_VALS, keepaliveVals(1, 30000, 500), nil, &ret) != 0 {
		t.Fatal(r.ws.LastError())
	}
	r.net.Silence(r.server, stack.Both)
	if err := r.net.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	// Set at 1m: the idle time restarts then; 10 probes 500ms apart.
	if len(probes) != 10 || probes[0] != time.Minute+30*time.Second || probes[9] != time.Minute+30*time.Second+9*500*time.Millisecond {
		t.Errorf("probes at %v", probes)
	}
	wantErr(t, "WSAIoctl(unknown code)", r.ws.WSAIoctl(r.stream(t), 0x98000005, keepaliveVals(1, 1, 1), nil, &ret), r.ws, WSAEOPNOTSUPP)
	wantErr(t, "WSAIoctl(zero time)", r.ws.WSAIoctl(r.stream(t), SIO_KEEPALIVE_VALS, keepaliveVals(1, 0, 1000), nil, &ret), r.ws, WSAEINVAL)
}

type probeTimes struct{ at *[]time.Duration }

func (p probeTimes) Segment(s *stack.Segment) {
	if s.Probe {
		*p.at = append(*p.at, s.At)
	}
}
func (probeTimes) Deliver(*stack.Segment)  {}
func (probeTimes) State(stack.StateChange) {}
func (probeTimes) Link(stack.LinkChange)   {}

// connected opens a stream socket with SO_KEEPALIVE as given and runs the
// network until its connect has completed.
func (r *rig) connected(t *testing.T, keepAlive uint32) SOCKET {
	t.Helper()
	s := r.stream(t)
	r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(keepAlive), 4)
	r.ws.Connect(s, r.addr())
	if err := r.net.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeepAliveFailure_PendingRecvGetsWSAENETRESET_ThenWSAECONNRESET(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.connected(t, 1)
	var failedAt time.Duration
	var got WSAError
	r.ws.RecvAsync(s, make([]byte, 64), func(n int, e WSAError) { got, failedAt = e, r.net.Now() })
	r.net.Silence(r.server, stack.Both)
	if err := r.net.RunFor(3 * time.Hour); err != nil {
		t.Fatal(err)
	}
	// Last received: the SYN-ACK at 20ms. Abort: 20ms + 2h + 10 x 1s.
	if want := 20*time.Millisecond + 2*time.Hour + 10*time.Second; got != WSAENETRESET || failedAt != want {
		t.Errorf("pending recv: %v at %v, want WSAENETRESET at %v", got, failedAt, want)
	}
	wantErr(t, "recv after the failure", r.ws.Recv(s, make([]byte, 64)), r.ws, WSAECONNRESET)
	wantErr(t, "send after the failure", r.ws.Send(s, []byte("x")), r.ws, WSAECONNRESET)
}

func TestSocketArgumentErrors(t *testing.T) {
	r := newRig(t, vista).started(t)
	for _, tc := range []struct {
		af, typ, proto int
		want           WSAError
	}{{99, SOCK_STREAM, 0, WSAEAFNOSUPPORT}, {AF_INET, 7, 0, WSAESOCKTNOSUPPORT}, {AF_INET, SOCK_STREAM, IPPROTO_UDP, WSAEPROTONOSUPPORT}} {
		if s := r.ws.Socket(tc.af, tc.typ, tc.proto); s != INVALID_SOCKET || r.ws.LastError() != tc.want {
			t.Errorf("socket(%d, %d, %d) = %v, %v; want INVALID_SOCKET, %v", tc.af, tc.typ, tc.proto, s, r.ws.LastError(), tc.want)
		}
	}
	if r.ws.WSAStartup(0x0001) != WSAVERNOTSUPPORTED.Code {
		t.Error("WSAStartup(1.0) accepted")
	}
}

func TestEveryCallIsReported(t *testing.T) {
	r := newRig(t, vista).started(t)
	s := r.stream(t)
	r.ws.Setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dword(1), 3)
	last := r.calls[len(r.calls)-1]
	if last.Func != "setsockopt" || last.Level != "SOL_SOCKET" || last.Opt != "SO_KEEPALIVE" || last.Result != SOCKET_ERROR || last.Err != WSAEFAULT || last.Conn == nil {
		t.Errorf("last call reported as %+v", last)
	}
	if len(r.calls) != 3 || r.calls[0].Func != "WSAStartup" || r.calls[1].Func != "socket" {
		t.Errorf("calls %+v", r.calls)
	}
}

// FuzzOptionCalls throws arbitrary levels, options, buffers and lengths at
// setsockopt, getsockopt and WSAIoctl, Winsock's and POSIX's: no input may
// panic, a failed call returns its failure value with an error set, and a
// failed getsockopt leaves the buffer alone. Seeds: testdata/fuzz.
func FuzzOptionCalls(f *testing.F) {
	f.Add(SOL_SOCKET, SO_KEEPALIVE, []byte{1, 0, 0, 0}, 4, uint32(SIO_KEEPALIVE_VALS), true)
	f.Add(IPPROTO_TCP, TCP_KEEPCNT, []byte{0, 1, 0, 0}, 3, uint32(0), false)
	f.Add(0x1234, -1, []byte(nil), -5, uint32(0xffffffff), true)
	f.Fuzz(func(t *testing.T, level, opt int, optval []byte, optlen int, code uint32, dgram bool) {
		r := newRig(t, win1709).started(t)
		s := r.stream(t)
		if dgram {
			s = r.ws.Socket(AF_INET6, SOCK_DGRAM, 0)
		}
		check := func(what string, got int) {
			if got != 0 && (got != SOCKET_ERROR || r.ws.WSAGetLastError() < 10000) {
				t.Fatalf("%s = %d, error %d", what, got, r.ws.WSAGetLastError())
			}
		}
		check("setsockopt", r.ws.Setsockopt(s, level, opt, optval, optlen))
		before := append([]byte(nil), optval...)
		n := optlen
		if got := r.ws.Getsockopt(s, level, opt, optval, &n); got != 0 {
			check("getsockopt", got)
			if !bytes.Equal(before, optval) {
				t.Fatal("a failed getsockopt wrote to optval")
			}
		}
		var ret uint32
		check("WSAIoctl", r.ws.WSAIoctl(s, code, optval, nil, &ret))

		// The same arguments against the POSIX surface.
		p := NewPOSIX(r.client)
		fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
		if dgram {
			fd = p.Socket(LinuxAF_INET6, SOCK_DGRAM, 0)
		}
		if got := p.Setsockopt(fd, level, opt, optval, optlen); got != 0 && (got != -1 || p.Errno().Code == 0) {
			t.Fatalf("POSIX setsockopt = %d, errno %v", got, p.Errno())
		}
		before = append([]byte(nil), optval...)
		n = optlen
		if got := p.Getsockopt(fd, level, opt, optval, &n); got != 0 && !bytes.Equal(before, optval) {
			t.Fatal("a failed POSIX getsockopt wrote to optval")
		}
	})
}

// A timeout that is not keep-alive's: retransmission giving up an
// established connection is WSAECONNABORTED ("possibly due to a data
// transmission time-out"), keep-alive on or not, and a connect that times
// out is WSAETIMEDOUT (Windows Sockets error codes).
func TestTimeoutsThatAreNotKeepAlive(t *testing.T) {
	for _, keepAlive := range []uint32{1, 0} {
		r := newRig(t, vista).started(t)
		s := r.connected(t, keepAlive)
		var got WSAError
		r.ws.RecvAsync(s, make([]byte, 64), func(n int, e WSAError) { got = e })
		r.net.Silence(r.server, stack.Inbound)
		if n := r.ws.Send(s, []byte("data")); n != 4 {
			t.Fatalf("send = %d, %v", n, r.ws.LastError())
		}
		if err := r.net.RunFor(time.Hour); err != nil {
			t.Fatal(err)
		}
		if got != WSAECONNABORTED {
			t.Errorf("SO_KEEPALIVE %d: pending recv after retransmission gave up: %v, want %v", keepAlive, got, WSAECONNABORTED)
		}
	}

	c := newRig(t, vista).started(t)
	c.net.Silence(c.server, stack.Both)
	s := c.stream(t)
	var connectErr WSAError
	c.ws.ConnectEx(s, c.addr(), func(e WSAError) { connectErr = e })
	if err := c.net.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	if connectErr != WSAETIMEDOUT {
		t.Errorf("ConnectEx to a silent host: %v, want %v", connectErr, WSAETIMEDOUT)
	}
}

// shutdown (winsock.h): WSAENOTCONN before connecting, WSAEINVAL for a
// direction other than SD_RECEIVE, SD_SEND and SD_BOTH, WSAENOTSOCK for
// no socket; SD_SEND on a connected socket sends the FIN.
func TestShutdown(t *testing.T) {
	r := newRig(t, vista).started(t)
	wantErr(t, "shutdown before connect", r.ws.Shutdown(r.stream(t), 1), r.ws, WSAENOTCONN)
	wantErr(t, "shutdown on no socket", r.ws.Shutdown(0xBEEF, 1), r.ws, WSAENOTSOCK)
	s := r.connected(t, 0)
	wantErr(t, "shutdown(3)", r.ws.Shutdown(s, 3), r.ws, WSAEINVAL)
	if got := r.ws.Shutdown(s, 1); got != 0 {
		t.Fatalf("shutdown(SD_SEND) = %d (%s)", got, r.ws.LastError().Name)
	}
	if st := r.ws.Conn(s).State(); st != stack.FinWait1 {
		t.Errorf("after shutdown(SD_SEND): %v, want FIN-WAIT-1", st)
	}
	var last Call
	for _, c := range r.calls {
		if c.Func == "shutdown" {
			last = c
		}
	}
	if last.Value != "SD_SEND" || last.Result != 0 {
		t.Errorf("last shutdown reported as %+v, want SD_SEND, 0", last)
	}
}
