package live

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// stamper gives each TCP segment on the tester's veth end the kernel's
// timestamp of it, rather than the time gVisor's goroutines got round to
// it: on a loaded machine those differ by milliseconds (8 ms was seen on a
// two-core CI machine running other tests), which is more than the kernel's
// own spread from run to run.
//
// It reads a second AF_PACKET socket on the tester end, with SO_TIMESTAMPNS:
// the kernel stamps a frame the veth receives as it queues it, and a frame
// gVisor sends as it hands it to the veth, before either reaches a reader.
// The tap then looks up each segment it sees by its identity and direction
// (take), in wire order.
type stamper struct {
	fd   int
	stop atomic.Bool
	done chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond
	pending [2][]stamp // by Direction; oldest first
}

// stamp is one frame's identity and the kernel's time of it.
type stamp struct {
	key segKey
	at  Mono
}

// segKey identifies a segment among those of one direction: the IPv4 ID
// tells apart segments that are otherwise identical (repeated probes).
type segKey struct {
	id       uint16
	flags    uint8
	seq, ack uint32
	len      int
}

func keyOf(ip header.IPv4, tcp header.TCP, payloadLen int) segKey {
	return segKey{id: ip.ID(), flags: uint8(tcp.Flags()), seq: tcp.SequenceNumber(), ack: tcp.AckNumber(), len: payloadLen}
}

const (
	// stampReadTimeout bounds how long the reader blocks, so that close
	// can stop it before closing the socket under it.
	stampReadTimeout = 50 * time.Millisecond
	// stampWait is how long take waits for the reader to catch up with
	// a frame the tap already has; past it the tap's own clock is used.
	stampWait = 200 * time.Millisecond
	// stampBacklog bounds the unclaimed stamps kept per direction.
	stampBacklog = 4096
)

// stampSocket opens the timestamping socket on ifindex: every frame, both
// ways, with the kernel's receive or transmit time.
func stampSocket(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.NsecToTimeval(stampReadTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// ETH_P_ALL, not ETH_P_IP: only taps for every protocol see the
	// frames the host sends.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func newStamper(fd int) *stamper {
	s := &stamper{fd: fd, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.read()
	return s
}

// close stops the reader and then closes the socket: closing it while the
// reader is inside recvmsg would let a new descriptor take its number.
func (s *stamper) close() {
	s.stop.Store(true)
	<-s.done
	unix.Close(s.fd)
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *stamper) read() {
	defer close(s.done)
	buf := make([]byte, mtu+64)
	oob := make([]byte, unix.CmsgSpace(16))
	for !s.stop.Load() {
		n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			continue // the timeout, or EINTR; anything else recurs and the tap falls back
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		var dir Direction
		switch ll.Pkttype {
		case unix.PACKET_HOST:
			dir = In
		case unix.PACKET_OUTGOING:
			dir = Out
		default:
			continue
		}
		at, ok := kernelTime(oob[:oobn])
		if !ok {
			continue
		}
		key, ok := frameKey(buf[:n])
		if !ok {
			continue
		}
		s.mu.Lock()
		q := append(s.pending[dir], stamp{key, at})
		if len(q) > stampBacklog {
			q = q[len(q)-stampBacklog:]
		}
		s.pending[dir] = q
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// kernelTime reads SCM_TIMESTAMPNS (CLOCK_REALTIME) and turns it into a
// CLOCK_MONOTONIC reading, the clock the rest of the lab uses, by the two
// clocks' offset now: a step of the wall clock between the frame and this
// read would shift it, nothing else does.
func kernelTime(oob []byte) (Mono, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS || len(m.Data) < 16 {
			continue
		}
		sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
		nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
		var real unix.Timespec
		mono := Now()
		if unix.ClockGettime(unix.CLOCK_REALTIME, &real) != nil {
			return 0, false
		}
		return mono - Mono(real.Nano()-(sec*1e9+nsec)), true
	}
	return 0, false
}

// frameKey parses an Ethernet frame carrying IPv4 TCP.
func frameKey(frame []byte) (segKey, bool) {
	if len(frame) < header.EthernetMinimumSize {
		return segKey{}, false
	}
	if header.Ethernet(frame).Type() != header.IPv4ProtocolNumber {
		return segKey{}, false
	}
	seg, ok := parseIPv4TCP(frame[header.EthernetMinimumSize:])
	return seg.key, ok
}

// take returns the kernel's time of the segment key going dir, waiting up
// to stampWait for the reader, and forgets it and every older stamp of that
// direction (frames the tap never saw, such as ones fdbased dropped). It
// reports false if there is none.
func (s *stamper) take(dir Direction, key segKey) (Mono, bool) {
	deadline := time.Now().Add(stampWait)
	var wake *time.Timer // sync.Cond has no timed wait: a timer wakes this one up
	defer func() {
		if wake != nil {
			wake.Stop()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		q := s.pending[dir]
		for i, st := range q {
			if st.key == key {
				s.pending[dir] = q[i+1:]
				return st.at, true
			}
		}
		if s.stop.Load() || !time.Now().Before(deadline) {
			return 0, false
		}
		if wake == nil {
			wake = time.AfterFunc(time.Until(deadline), func() {
				s.mu.Lock()
				s.cond.Broadcast()
				s.mu.Unlock()
			})
		}
		s.cond.Wait()
	}
}
