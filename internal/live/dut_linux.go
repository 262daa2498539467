package live

import (
	"fmt"
	"os/exec"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"kasim/internal/dut"
)

// startDUT builds the lab for a driver (Options.DUT): the helper makes a
// TAP device in its namespace, the tester's packet socket is bound to the
// TAP's kernel side, and the helper then becomes the driver, which attaches
// its stack to the TAP's other side. No kernel TCP is between the two: the
// namespace's kernel owns no address there and forwards nothing.
func (l *Lab) startDUT() error {
	c := l.cfg
	path, err := exec.LookPath(c.DUT[0])
	if err != nil {
		return fmt.Errorf("live: driver: %v", err)
	}
	if _, err := l.peer.call(request{Op: opTap, Ifname: c.peerIf, MAC: c.testerMAC.String()}); err != nil {
		return fmt.Errorf("live: making the TAP device %s: %w", c.peerIf, err)
	}
	if l.tester, err = testerInPeer(c, l.peer.pid); err != nil {
		return err
	}
	env := []string{
		fmt.Sprintf("%s=%d", dut.EnvProtocol, dut.Version),
		dut.EnvIf + "=" + c.peerIf,
		dut.EnvAddr + "=" + c.peer.String(),
		dut.EnvMAC + "=" + c.peerMAC.String(),
		dut.EnvTesterAddr + "=" + c.tester.Addr().String(),
		dut.EnvTesterMAC + "=" + c.testerMAC.String(),
	}
	argv := append([]string{path}, c.DUT[1:]...)
	start := time.Now()
	if err := l.peer.become(c.DUT[0], argv, append(env, c.DUTEnv...)); err != nil {
		return err
	}
	l.peerCarrier = time.Since(start)
	return nil
}

// testerInPeer opens the tester's packet socket (and the timestamping one)
// on the TAP device in the peer's namespace, from a locked thread that
// enters it and leaves again. The TAP's kernel side has the tester's MAC,
// so the frames the driver sends the tester arrive there as the host's.
func testerInPeer(c *config, peerPID int) (*tester, error) {
	enter := func() error {
		target, err := netns.GetFromPid(peerPID)
		if err != nil {
			return fmt.Errorf("live: opening the driver's network namespace: %v", err)
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("live: entering the driver's network namespace: %v", err)
		}
		return nil
	}
	return visitNamespace(enter, func() (*tester, error) { return openTAPTester(c) })
}

func openTAPTester(c *config) (_ *tester, err error) {
	t := &tester{fd: -1}
	defer func() {
		if err != nil {
			t.close()
			t = nil
		}
	}()
	link, err := netlink.LinkByName(c.peerIf)
	if err != nil {
		return nil, fmt.Errorf("live: finding %s: %v", c.peerIf, err)
	}
	t.ifindex = link.Attrs().Index
	if t.fd, err = packetSocket(t.ifindex); err != nil {
		return nil, fmt.Errorf("live: opening the packet socket on %s: %v", c.peerIf, err)
	}
	if c.OnSegment != nil {
		sfd, err := stampSocket(t.ifindex)
		if err != nil {
			return nil, fmt.Errorf("live: opening the timestamping socket on %s: %v", c.peerIf, err)
		}
		t.stamps = newStamper(sfd)
	}
	return t, nil
}
