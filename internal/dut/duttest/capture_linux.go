package duttest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Segment is a TCP segment seen on kd0.
type Segment struct {
	T                int64 // CLOCK_MONOTONIC when read, as a driver's t
	SrcMAC           net.HardwareAddr
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            header.TCPFlags
	Len              int  // octets of data
	FromDUT          bool // sent from DUTAddr
}

func (s Segment) String() string {
	var fl []string
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"} {
		if s.Flags&(1<<i) != 0 {
			fl = append(fl, n)
		}
	}
	return fmt.Sprintf("%s > %s %s seq=%d ack=%d len=%d",
		netip.AddrPortFrom(s.Src, s.SrcPort), netip.AddrPortFrom(s.Dst, s.DstPort), strings.Join(fl, "|"), s.Seq, s.Ack, s.Len)
}

// LogSegments logs segs, one a line, each with its time in seconds.
func LogSegments(t testing.TB, segs []Segment) {
	t.Helper()
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "  %.6f %v\n", float64(s.T)/1e9, s)
	}
	t.Logf("segments on %s:\n%s", IfName, b.String())
}

// Capture reads every frame on kd0, both ways, through a packet socket
// on the kernel's side, until Stop (at the latest, the test's cleanup).
type Capture struct {
	f    *os.File
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	segs []Segment
	macs []net.HardwareAddr // the source of every frame, TCP or not
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Capture starts a capture on kd0.
func (l *Lab) Capture(t testing.TB) *Capture {
	t.Helper()
	var fd int
	err := l.Do(func() error {
		ifi, err := net.InterfaceByName(IfName)
		if err != nil {
			return err
		}
		// Protocol 0 until bound: no frame from another interface.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("capturing on %s: %v", IfName, err)
	}
	c := &Capture{f: os.NewFile(uintptr(fd), "packet socket on "+IfName), done: make(chan struct{})}
	go c.run()
	t.Cleanup(c.Stop)
	return c
}

func (c *Capture) run() {
	defer close(c.done)
	buf := make([]byte, 2048)
	dut := netip.MustParseAddr(DUTAddr)
	for {
		n, err := c.f.Read(buf)
		if err != nil {
			return
		}
		at := Now()
		b := buf[:n]
		if len(b) < header.EthernetMinimumSize {
			continue
		}
		eth := header.Ethernet(b)
		src := slices.Clone(net.HardwareAddr(b[6:12]))
		c.mu.Lock()
		c.macs = append(c.macs, src)
		c.mu.Unlock()
		ip := header.IPv4(b[header.EthernetMinimumSize:])
		if eth.Type() != header.IPv4ProtocolNumber || !ip.IsValid(len(ip)) || ip.TransportProtocol() != header.TCPProtocolNumber {
			continue
		}
		tcp := header.TCP(ip.Payload())
		if len(tcp) < header.TCPMinimumSize || int(tcp.DataOffset()) < header.TCPMinimumSize || int(tcp.DataOffset()) > len(tcp) {
			continue
		}
		s := Segment{
			T: at, SrcMAC: src,
			Src: netip.AddrFrom4(ip.SourceAddress().As4()), Dst: netip.AddrFrom4(ip.DestinationAddress().As4()),
			SrcPort: tcp.SourcePort(), DstPort: tcp.DestinationPort(),
			Seq: tcp.SequenceNumber(), Ack: tcp.AckNumber(), Flags: tcp.Flags(),
			Len: len(tcp) - int(tcp.DataOffset()),
		}
		s.FromDUT = s.Src == dut
		c.mu.Lock()
		c.segs = append(c.segs, s)
		c.mu.Unlock()
	}
}

// Segments returns the TCP segments read so far, in order.
func (c *Capture) Segments() []Segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.segs)
}

// SourceMACs returns the source address of every frame read so far.
func (c *Capture) SourceMACs() []net.HardwareAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.macs)
}

// Stop ends the capture; it may be called more than once.
func (c *Capture) Stop() {
	c.once.Do(func() {
		c.f.Close()
		<-c.done
	})
}

// Stray sends, from the kernel's side of kd0, an IPv4 frame for a MAC that
// is not the driver's: a NIC would drop it, and so must the driver.
func (c *Capture) Stray(t testing.TB) {
	t.Helper()
	frame := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: tcpip.LinkAddress(mac(TesterMAC)), DstAddr: tcpip.LinkAddress(mac("02:00:0a:63:00:99")), Type: header.IPv4ProtocolNumber,
	})
	if _, err := c.f.Write(frame); err != nil {
		t.Fatalf("sending a stray frame: %v", err)
	}
}
