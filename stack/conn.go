package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// State is a TCP connection state, named as in RFC 793.
type State int

// TCP states. gVisor's internal states map onto these: its INITIAL, BOUND,
// CLOSE and ERROR are all CLOSED (an aborted connection is closed; the reason
// reaches the application as an error).
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func stateOf(ep tcpip.Endpoint) State {
	switch tcp.EndpointState(ep.State()) {
	case tcp.StateEstablished:
		return Established
	case tcp.StateSynSent, tcp.StateConnecting:
		return SynSent
	case tcp.StateSynRecv:
		return SynReceived
	case tcp.StateFinWait1:
		return FinWait1
	case tcp.StateFinWait2:
		return FinWait2
	case tcp.StateTimeWait:
		return TimeWait
	case tcp.StateCloseWait:
		return CloseWait
	case tcp.StateLastAck:
		return LastAck
	case tcp.StateListen:
		return Listen
	case tcp.StateClosing:
		return Closing
	}
	return Closed
}

// KeepAlive is a connection's keep-alive configuration. Zero Idle, Interval
// or Count leave the stack's default in place (gVisor's: 2 h, 75 s, 9).
type KeepAlive struct {
	Enabled  bool
	Idle     time.Duration // time without any received segment before the first probe
	Interval time.Duration // time between unanswered probes
	Count    int           // unanswered probes before the connection is aborted
}

func (k KeepAlive) validate() error {
	switch {
	case k.Idle < 0:
		return fmt.Errorf("keep-alive idle %v: want zero (default) or more", k.Idle)
	case k.Interval < 0:
		return fmt.Errorf("keep-alive interval %v: want zero (default) or more", k.Interval)
	case k.Count < 0:
		return fmt.Errorf("keep-alive count %d: want zero (default) or more", k.Count)
	}
	return nil
}

// ErrWouldBlock is returned by Send and Recv when the call cannot make
// progress now; the connection's event handler runs when that may change.
var ErrWouldBlock = errors.New("stack: operation would block")

// OpError is a failed socket operation. Err is gVisor's error; the sockopt
// package maps it to errno and Winsock names and codes.
type OpError struct {
	Op   string // "connect", "send", "recv", "setsockopt", ...
	Conn *Conn
	Err  tcpip.Error
}

func (e *OpError) Error() string { return fmt.Sprintf("%s on %s: %s", e.Op, e.Conn, e.Err) }

// connKey finds a host's socket from a segment. It is plain bytes (no
// netip.Addr, whose zone pointer makes hashing and comparing slower): the
// lookup runs for every packet.
type connKey struct {
	localPort, remotePort uint16
	remote                [16]byte
}

func keyOf(localPort uint16, remote netip.Addr, remotePort uint16) connKey {
	return connKey{localPort: localPort, remotePort: remotePort, remote: remote.As16()}
}

// Conn is a TCP socket on a simulated host. Its methods never block: what
// would block returns ErrWouldBlock, and the handler set with OnEvent runs
// whenever the connection's state or readiness may have changed.
type Conn struct {
	host    *Host
	id      int
	proto   tcpip.NetworkProtocolNumber
	ep      tcpip.Endpoint
	wq      *waiter.Queue
	entry   waiter.Entry
	state   State
	local   netip.AddrPort
	remote  netip.AddrPort
	onEvent func(*Conn)
	dirty   bool // guarded by Network.dirtyMu
	// keepAliveOn records that the application switched keep-alive on, so
	// that kasim can arm it when the handshake completes (see arm); the
	// host may run it regardless (Behaviour.AlwaysKeepAlive).
	keepAliveOn bool
	registered  bool
	// wire is the host's flow for this connection once a segment of it
	// was routed, kept here to spare a lookup in a map of every flow:
	// nil, or the host's flows entry for the connection's key.
	wire           *flow
	keepAliveAbort bool
	closed         bool // the application closed it
	established    bool // it reached a synchronized state
	// userTimeout is TCP_USER_TIMEOUT as set; count the probe count the
	// application set (0: the stack's default), kept apart from gVisor's
	// while a user timeout replaces it (Behaviour.UserTimeoutReplacesCount).
	userTimeout time.Duration
	// connectTimeout is the connect's own time limit (SetConnectTimeout).
	connectTimeout time.Duration
	count          int
	// held, if set, is the keep-alive idle time and count the
	// application set, while gVisor runs with others that put its timer
	// where Linux's is (keepTimer); the next segment received gives them
	// back.
	held *KeepAlive
	// deferSecs is TCP_DEFER_ACCEPT as set on a listening socket;
	// deferTimeouts the SYN-ACK timeouts Linux makes of it (SetDeferAccept).
	deferSecs, deferTimeouts int
	retx                     retx          // Linux's account of retransmissions (retransmit.go)
	syn                      *synRetx      // the system's SYN retransmission (syn.go), from gVisor's first or the SYN
	tick                     *tickRetx     // lwIP's data retransmission (tickretx.go), from the first send
	wprobe                   *windowProbes // Linux's probes of a closed window (window.go), while it is closed
	synSeen                  bool          // the first SYN went, at synAt (Linux's retrans_stamp in SYN-SENT)
	written                  int64         // octets the application has handed to send
	resetOnData              bool          // reset when data arrives (ResetOnData)
	synAt                    time.Duration
	synRetries               int // TCP_SYNCNT, 0 for the host's
}

// ID returns the socket's number, unique in its Network and given out in
// creation order (listeners included).
func (c *Conn) ID() int { return c.id }

// Host returns the host the socket lives on.
func (c *Conn) Host() *Host { return c.host }

// State returns the connection's TCP state as last observed by the driver.
func (c *Conn) State() State { return c.state }

// LocalAddr returns the local address and port (valid once connecting).
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr returns the peer's address and port (valid once connecting).
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

func (c *Conn) String() string { return fmt.Sprintf("%s/sock%d", c.host.name, c.id) }

// OnEvent sets the handler the driver calls, on its goroutine and in socket
// order, after any change that may concern the connection: a state change,
// data or an error to read, room to send. It is also called once, in the
// current instant, right after it is set, so that nothing that happened
// before (data that arrived with the handshake, say) goes unseen. The
// handler may call any method.
func (c *Conn) OnEvent(f func(*Conn)) {
	c.onEvent = f
	c.host.net.markDirty(c)
}

func netProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() || a.Is4In6() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// Socket creates an unconnected TCP socket for network "tcp4" or "tcp6".
func (h *Host) Socket(network string) (*Conn, error) {
	var proto tcpip.NetworkProtocolNumber
	switch network {
	case "tcp4":
		proto = ipv4.ProtocolNumber
	case "tcp6":
		proto = ipv6.ProtocolNumber
	default:
		return nil, fmt.Errorf("stack: socket network %q: want tcp4 or tcp6", network)
	}
	return h.newConn(proto, nil, nil)
}

func (h *Host) newConn(proto tcpip.NetworkProtocolNumber, ep tcpip.Endpoint, wq *waiter.Queue) (*Conn, error) {
	if h.net.closed {
		return nil, errClosed
	}
	if ep == nil {
		wq = new(waiter.Queue)
		var err tcpip.Error
		ep, err = h.st.NewEndpoint(tcp.ProtocolNumber, proto, wq)
		if err != nil {
			return nil, fmt.Errorf("stack: %s: new socket: %s", h.name, err)
		}
	}
	h.net.nextSock++
	c := &Conn{host: h, id: h.net.nextSock, proto: proto, ep: ep, wq: wq}
	c.entry = waiter.NewFunctionEntry(waiter.EventIn|waiter.EventOut|waiter.EventErr|waiter.EventHUp,
		func(waiter.EventMask) { h.net.markDirty(c) })
	wq.EventRegister(&c.entry)
	c.applyDefaults()
	return c, nil
}

// Dial creates a socket, applies opts (keep-alive before connect, as
// applications usually do) and starts connecting to raddr.
func (h *Host) Dial(raddr netip.AddrPort, opts KeepAlive) (*Conn, error) {
	network := "tcp6"
	if netProto(raddr.Addr()) == ipv4.ProtocolNumber {
		network = "tcp4"
	}
	c, err := h.Socket(network)
	if err != nil {
		return nil, err
	}
	if err := c.SetKeepAlive(opts); err != nil {
		return nil, err
	}
	if err := c.Connect(raddr); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect starts connecting to raddr and returns at once; the connection
// becomes ESTABLISHED (or fails) as the simulation runs.
func (c *Conn) Connect(raddr netip.AddrPort) error {
	addr := raddr.Addr().Unmap()
	if netProto(addr) != c.proto {
		return fmt.Errorf("stack: connect %s to %s: address family differs from the socket's", c, raddr)
	}
	c.host.startTicks() // before the stack arms the SYN's timer
	err := c.ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(addr.AsSlice()), Port: raddr.Port()})
	if _, started := err.(*tcpip.ErrConnectStarted); err != nil && !started {
		c.refresh()
		return &OpError{Op: "connect", Conn: c, Err: err}
	}
	c.remote = netip.AddrPortFrom(addr, raddr.Port())
	c.register()
	c.refresh()
	return nil
}

func (c *Conn) register() {
	la, err := c.ep.GetLocalAddress()
	if err != nil {
		return
	}
	local, _ := netip.AddrFromSlice(la.Addr.AsSlice())
	c.local = netip.AddrPortFrom(local, la.Port)
	c.host.conns[keyOf(la.Port, c.remote.Addr(), c.remote.Port())] = c
	c.registered = true
}

// sendCopy routes a copy of p, a segment kasim sends again on the
// system's schedule, with *mark set while it is routed, so that the
// shaping hooks let it through where they keep gVisor's own copies off
// the wire.
func (c *Conn) sendCopy(p packet, mark *bool) {
	*mark = true
	c.host.net.route(c.host, packet{proto: p.proto, data: append([]byte(nil), p.data...)})
	*mark = false
}

// abandon gives the connection up on kasim's schedule: gVisor aborts the
// endpoint (its RST is for the shaping hooks to keep or drop) and the
// driver reads the change.
func (c *Conn) abandon() {
	c.ep.Abort()
	c.host.net.markDirty(c)
}

// gaveUpErr is the error of a connection kasim gave up: a connect under
// SynRetransmit (the host's abort error: ETIMEDOUT on Linux, ECONNABORTED
// on lwIP, whatever gVisor's abort left), or data under TickRetransmit
// (ECONNABORTED: lwIP's ERR_ABRT, where gVisor's abort leaves EPIPE); or
// nil.
func (c *Conn) gaveUpErr(op string) error {
	var err tcpip.Error
	switch {
	case c.tick != nil && c.tick.gaveUp && c.tick.bsd:
		err = &tcpip.ErrTimeout{} // tcp_drop(tp, ETIMEDOUT)
	case c.tick != nil && c.tick.gaveUp:
		err = &tcpip.ErrConnectionAborted{}
	case c.wprobe != nil && c.wprobe.gaveUp != "":
		err = &tcpip.ErrTimeout{} // tcp_write_err
	case c.syn == nil || !c.syn.gaveUp:
		return nil
	case c.host.b.AbortError == AbortConnAborted:
		err = &tcpip.ErrConnectionAborted{}
	default:
		err = &tcpip.ErrTimeout{}
	}
	return &OpError{Op: op, Conn: c, Err: err}
}

// Send queues p for sending and returns how much was taken.
func (c *Conn) Send(p []byte) (int, error) {
	if err := c.gaveUpErr("send"); err != nil {
		return 0, err
	}
	if c.synMasked() {
		return 0, ErrWouldBlock
	}
	n, err := c.ep.Write(bytes.NewReader(p), tcpip.WriteOptions{})
	c.written += n
	c.refresh()
	switch err.(type) {
	case nil:
		return int(n), nil
	case *tcpip.ErrWouldBlock:
		return int(n), ErrWouldBlock
	}
	return int(n), &OpError{Op: "send", Conn: c, Err: c.abortErr(err)}
}

// Recv reads received data into p. It returns io.EOF once the peer has
// closed and everything was read, ErrWouldBlock when nothing is there yet,
// and an *OpError when the connection failed (reset, timed out).
func (c *Conn) Recv(p []byte) (int, error) {
	if c.synMasked() {
		return 0, ErrWouldBlock
	}
	if err := c.gaveUpErr("recv"); err != nil {
		return 0, err
	}
	w := tcpip.SliceWriter(p)
	res, err := c.ep.Read(&w, tcpip.ReadOptions{})
	c.refresh()
	switch err.(type) {
	case nil:
		return res.Count, nil
	case *tcpip.ErrWouldBlock:
		return 0, ErrWouldBlock
	case *tcpip.ErrClosedForReceive:
		return 0, io.EOF
	}
	return 0, &OpError{Op: "recv", Conn: c, Err: c.abortErr(err)}
}

// Close closes the socket (a FIN goes out if the connection was open). On
// a host where close stops keep-alive (Behaviour.CloseStopsKeepAlive) the orphan
// probes no more.
func (c *Conn) Close() error {
	c.closed = true
	if !c.keepAliveWanted() && c.ep.SocketOptions().GetKeepAlive() {
		c.ep.SocketOptions().SetKeepAlive(false)
	}
	c.ep.Close()
	c.refresh()
	return nil
}

// Shutdown directions, as shutdown(2) numbers them (SHUT_RD, SHUT_WR,
// SHUT_RDWR; Winsock's SD_RECEIVE, SD_SEND, SD_BOTH are the same).
const (
	ShutdownRead  = 0
	ShutdownWrite = 1
	ShutdownBoth  = 2
)

// Shutdown shuts the connection down for reading, writing or both
// (ShutdownRead, ShutdownWrite, ShutdownBoth): for writing, a FIN goes
// out once the data before it has, and the socket stays open, in
// FIN-WAIT-1 and then FIN-WAIT-2, with its keep-alive, until the peer
// closes too; for reading, receives return end of stream. It fails with
// ErrNotConnected on a socket that is not connected.
func (c *Conn) Shutdown(how int) error {
	var flags tcpip.ShutdownFlags
	switch how {
	case ShutdownRead:
		flags = tcpip.ShutdownRead
	case ShutdownWrite:
		flags = tcpip.ShutdownWrite
	case ShutdownBoth:
		flags = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return fmt.Errorf("stack: %s: shutdown %d: want ShutdownRead, ShutdownWrite or ShutdownBoth", c, how)
	}
	err := c.ep.Shutdown(flags)
	c.refresh()
	if err != nil {
		return &OpError{Op: "shutdown", Conn: c, Err: err}
	}
	return nil
}

// ResetOnData has the connection reset the moment data it cannot deliver
// is there: now, if unread data waits, or when data arrives. It is
// Windows' rule for a socket shut down for receiving (shutdown's
// SD_RECEIVE); Linux and gVisor take and acknowledge such data.
func (c *Conn) ResetOnData() {
	c.resetOnData = true
	if n, err := c.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption); err == nil && n > 0 {
		c.abandon()
	}
}

// SetUserTimeout sets TCP_USER_TIMEOUT: how long sent data, or keep-alive
// probes, may go unacknowledged before the connection is dropped; 0 turns
// it off. gVisor drops at whichever of the user timeout and the probe
// count comes first; on a host where the user timeout replaces the count,
// as on Linux, only the user timeout counts while it is set.
func (c *Conn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("stack: %s: user timeout %v: want zero (off) or more", c, d)
	}
	c.giveBackKeepAlive()
	if c.count == 0 {
		c.count, _ = c.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
	}
	opt := tcpip.TCPUserTimeoutOption(d)
	if err := c.sockErr(c.ep.SetSockOpt(&opt)); err != nil {
		return err
	}
	c.userTimeout = d
	if !c.host.b.UserTimeoutReplacesCount {
		return nil
	}
	n := c.count
	if d > 0 {
		n = math.MaxInt32 // never reached: the user timeout decides
	}
	return c.sockErr(c.ep.SetSockOptInt(tcpip.KeepaliveCountOption, n))
}

// SetReceiveBuffer is SO_RCVBUF: it sets the connection's receive buffer
// from v as the host's system does (Behaviour.ReceiveBuffer) and returns
// the size set. The window the connection advertises from then on is
// what is left of that size once the octets the application has not read
// are counted, so an application that stops reading closes it.
func (c *Conn) SetReceiveBuffer(v uint32) int {
	n := c.host.b.ReceiveBuffer.Size(v)
	c.ep.SocketOptions().SetReceiveBufferSize(int64(n), true)
	return c.ReceiveBuffer()
}

// ReceiveBuffer returns the connection's receive buffer size in octets,
// as getsockopt(SO_RCVBUF) reads it.
func (c *Conn) ReceiveBuffer() int { return int(c.ep.SocketOptions().GetReceiveBufferSize()) }

// UserTimeout returns the connection's TCP_USER_TIMEOUT (0: none).
func (c *Conn) UserTimeout() time.Duration { return c.userTimeout }

func (c *Conn) userTimeoutReplacesCount() bool {
	return c.host.b.UserTimeoutReplacesCount && c.userTimeout > 0
}

func (c *Conn) sockErr(err tcpip.Error) error {
	if err != nil {
		return &OpError{Op: "setsockopt", Conn: c, Err: err}
	}
	return nil
}

// refresh reads the connection's state and reports a change. Calling it
// right after each socket call keeps causal order in the event stream: the
// state change a call causes comes before the segments it sends.
func (c *Conn) refresh() {
	st := stateOf(c.ep)
	if st == c.state || c.synMasked() {
		return
	}
	if st != SynSent {
		c.stopSyn()
	}
	from := c.state
	c.state = st
	c.established = c.established || st.synchronized()
	n := c.host.net
	key := keyOf(c.local.Port(), c.remote.Addr(), c.remote.Port())
	f := c.flow()
	if st == Closed && from.synchronized() && c.registered && f != nil && (f.unanswered > 0 || c.gaveUpWithoutProbing(from, f)) {
		c.keepAliveAbort = true
	}
	ch := StateChange{At: n.Now(), Conn: c, From: from, To: st, KeepAliveAbort: c.keepAliveAbort}
	if st == Closed && from.synchronized() && c.registered && f != nil && !c.keepAliveAbort && !c.tickGaveUp(&ch) && !c.windowGaveUp(&ch, f) {
		c.gaveUp(&ch, f)
	}
	if st == Closed {
		c.stopWindowProbes()
	}
	if st == Closed && from == SynSent && c.registered && f != nil && !f.reset && !c.closed {
		c.synGaveUp(&ch) // nothing else ends a connect that had no answer
	}
	for _, o := range n.observers {
		o.State(ch)
	}
	if st == Established && c.keepAliveWanted() && c.host.b.ArmAtEstablishment {
		c.arm()
	} else if !c.probesIn(st) && c.ep.SocketOptions().GetKeepAlive() {
		c.ep.SocketOptions().SetKeepAlive(false) // a state the host's system does not probe in
	}
	bsdDrop := c.tick != nil && c.tick.gaveUp && c.tick.bsd && st == Closed // tcp_drop sends RST+ACK
	if (c.keepAliveAbort && c.host.b.AbortRST || bsdDrop) && f != nil && f.haveSnd && f.haveRcv {
		if c.tick != nil {
			c.sendCopy(resetPacket(c, f), &c.tick.resend) // past shapeTick, which keeps gVisor's own off the wire
		} else {
			n.route(c.host, resetPacket(c, f))
		}
	}
	if st == Closed && c.registered {
		delete(c.host.conns, key)
		delete(c.host.flows, key)
		c.registered, c.wire = false, nil
	}
}

// synchronized reports whether s is one of RFC 793's synchronized states,
// the ones keep-alive runs in.
func (s State) synchronized() bool {
	return s >= Established && s <= TimeWait
}

// arm starts keep-alive's idle timer as the handshake completes
// (Behaviour.ArmAtEstablishment). gVisor arms it only when a segment is
// processed on an established connection or data is acknowledged, so
// keep-alive switched on before connect never probes a connection that
// stays quiet; other stacks (Linux's tcp_finish_connect, Windows) arm it at
// establishment. Setting the option again arms it, with the idle time
// counted from now, the moment the last handshake segment arrived.
func (c *Conn) arm() { c.ep.SocketOptions().SetKeepAlive(true) }

func (n *Network) markDirty(c *Conn) {
	n.dirtyMu.Lock()
	if !c.dirty {
		c.dirty = true
		n.dirty = append(n.dirty, c)
	}
	n.dirtyMu.Unlock()
}

// pollConns reports state changes of every connection something happened
// to, runs their handlers in socket order, accepts on ready listeners, and
// reports whether there was anything to do.
func (n *Network) pollConns() bool {
	n.dirtyMu.Lock()
	list := n.dirty
	n.dirty = n.spare[:0]
	for _, c := range list {
		c.dirty = false
	}
	var ready []*Listener
	for _, l := range n.listeners {
		if l.ready {
			l.ready = false
			ready = append(ready, l)
		}
	}
	n.dirtyMu.Unlock()
	slices.SortFunc(list, func(a, b *Conn) int { return a.id - b.id })
	work := len(list) > 0
	for _, c := range list {
		c.refresh()
		if c.onEvent != nil {
			c.onEvent(c)
		}
	}
	n.spare = list[:0]
	for _, l := range ready {
		l.acceptAll()
		work = true
	}
	return work
}

// Listener is a listening TCP socket. The driver accepts every connection
// the moment its handshake completes (no backlog is modelled).
type Listener struct {
	sock     *Conn
	opts     KeepAlive
	onAccept func(*Conn)
	ready    bool // guarded by Network.dirtyMu
}

// Listen listens on port of the host's address for network "tcp4" or
// "tcp6". Accepted connections get keep-alive configuration opts and are
// passed to onAccept (which may be nil).
func (h *Host) Listen(network string, port uint16, opts KeepAlive, onAccept func(*Conn)) (*Listener, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("stack: %s: listen: %w", h.name, err)
	}
	s, err := h.Socket(network)
	if err != nil {
		return nil, err
	}
	return h.ListenOn(s, port, opts, onAccept)
}

// ListenOn is Listen on a socket the caller made (Host.Socket) and may
// have set options on: the connections it accepts start with its receive
// buffer, which gVisor takes when it starts listening (so an SO_RCVBUF set
// later changes nothing for them).
func (h *Host) ListenOn(s *Conn, port uint16, opts KeepAlive, onAccept func(*Conn)) (*Listener, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("stack: %s: listen: %w", h.name, err)
	}
	addr := h.addrFor(s.proto)
	if err := s.ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(addr.AsSlice()), Port: port}); err != nil {
		return nil, &OpError{Op: "bind", Conn: s, Err: err}
	}
	if err := s.ep.Listen(128); err != nil {
		return nil, &OpError{Op: "listen", Conn: s, Err: err}
	}
	s.local = netip.AddrPortFrom(addr, port)
	l := &Listener{sock: s, opts: opts, onAccept: onAccept}
	// The listener's waiter marks it ready; accepting happens in pollConns.
	s.wq.EventUnregister(&s.entry)
	s.entry = waiter.NewFunctionEntry(waiter.EventIn, func(waiter.EventMask) {
		h.net.dirtyMu.Lock()
		l.ready = true
		h.net.dirtyMu.Unlock()
	})
	s.wq.EventRegister(&s.entry)
	h.net.listeners = append(h.net.listeners, l)
	s.refresh()
	return l, nil
}

// Addr returns the address the listener listens on.
func (l *Listener) Addr() netip.AddrPort { return l.sock.local }

// Socket returns the listening socket.
func (l *Listener) Socket() *Conn { return l.sock }

func (l *Listener) acceptAll() {
	h := l.sock.host
	for {
		var peer tcpip.FullAddress
		ep, wq, err := l.sock.ep.Accept(&peer)
		if err != nil {
			return
		}
		c, cerr := h.newConn(l.sock.proto, ep, wq)
		if cerr != nil {
			ep.Close()
			return
		}
		raddr, _ := netip.AddrFromSlice(peer.Addr.AsSlice())
		c.remote = netip.AddrPortFrom(raddr, peer.Port)
		c.register()
		// The listener held the half-open connection; report it as having
		// been in SYN-RECEIVED, as RFC 793 names that phase.
		c.state = SynReceived
		if l.opts != (KeepAlive{}) {
			_ = c.SetKeepAlive(l.opts) // validated at Listen
		}
		c.refresh()
		if l.onAccept != nil {
			l.onAccept(c)
		}
	}
}
