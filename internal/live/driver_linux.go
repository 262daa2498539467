package live

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kasim/internal/dut"
)

// linuxOptions maps the protocol's option names to the kernel's numbers.
var linuxOptions = map[string][2]int{
	dut.SO_KEEPALIVE:     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	dut.TCP_KEEPIDLE:     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	dut.TCP_KEEPINTVL:    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
	dut.TCP_KEEPCNT:      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
	dut.TCP_USER_TIMEOUT: {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
	dut.TCP_SYNCNT:       {unix.IPPROTO_TCP, unix.TCP_SYNCNT},
	dut.TCP_DEFER_ACCEPT: {unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT},
}

var linuxLevels = map[string]int{dut.SOL_SOCKET: unix.SOL_SOCKET, dut.IPPROTO_TCP: unix.IPPROTO_TCP}

// linuxOption returns the kernel's level and option for a request's names.
// A name may also be a number, passed on as it is (a scenario can name an
// option by number); an unknown name is not an error of the request but
// the option the kernel does not have, so it gets ENOPROTOOPT as the
// kernel would give an unknown option number.
func linuxOption(level, opt string) (int, int, error) {
	lv, ok := linuxLevels[level]
	if !ok {
		n, err := strconv.Atoi(level)
		if err != nil {
			return 0, 0, unix.ENOPROTOOPT
		}
		lv = n
	}
	if o, ok := linuxOptions[opt]; ok {
		if o[0] != lv {
			return 0, 0, unix.ENOPROTOOPT
		}
		return lv, o[1], nil
	}
	n, err := strconv.Atoi(opt)
	if err != nil {
		return 0, 0, unix.ENOPROTOOPT
	}
	return lv, n, nil
}

// helloLinux is the kernel helper's hello: it is the linux driver.
func helloLinux() message {
	var u unix.Utsname
	version := ""
	if unix.Uname(&u) == nil {
		version = unix.ByteSliceToString(u.Release[:])
	}
	names := make([]string, 0, len(linuxOptions))
	for n := range linuxOptions {
		names = append(names, n)
	}
	slices.Sort(names)
	return message{Event: eventHello, Protocol: dut.Version, Stack: "Linux", Version: version,
		API: dut.APIPOSIX, Options: names, Ret: os.Getpid(), T: int64(Now())}
}

// MakeTAP creates a persistent TAP device in the calling thread's network
// namespace (the helper's), up, with MAC mac and no address, for a driver
// to attach to (TUNSETIFF on the same name attaches to it). Persistent,
// because the helper lets go of it before the driver opens it; it goes
// with the namespace. internal/dut/duttest makes its lab's device with it,
// so that a driver's own tests get the device kasim gives it.
func MakeTAP(name, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("TAP device %s: %v", name, err)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/net/tun: %v", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("TAP device %q: %v", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("creating TAP device %s: %v", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("making TAP device %s persistent: %v", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding %s: %v", name, err)
	}
	// The tester's MAC: the frames the driver sends the tester are then
	// the host's, which the tester's packet socket keeps (packetSocket).
	if err := netlink.LinkSetHardwareAddr(link, hw); err != nil {
		return fmt.Errorf("setting %s's address: %v", name, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("setting %s's MTU: %v", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing %s up: %v", name, err)
	}
	return nil
}

// tap handles the tap request.
func (h *helper) tap(req request) {
	if err := MakeTAP(req.Ifname, req.MAC); err != nil {
		h.fail(req, "%v", err)
		return
	}
	h.send(message{ID: req.ID, T: int64(Now())})
}

// become replies, then executes the driver (argv[0], a path the Lab has
// resolved) in the helper's place: it keeps the helper's namespace, its
// standard input and output (the protocol's pipe) and its parent-death
// signal, so the driver dies with kasim as the helper would have.
func (h *helper) become(req request) {
	if len(req.Argv) == 0 {
		h.fail(req, "empty argv")
		return
	}
	h.send(message{ID: req.ID, T: int64(Now())})
	h.outMu.Lock() // nothing of the helper's may follow the driver's lines
	err := syscall.Exec(req.Argv[0], req.Argv, append(os.Environ(), req.Env...))
	// Still here: the Lab, waiting for a hello, quotes standard error
	// when the helper's output ends.
	fmt.Fprintf(os.Stderr, "kasim live peer: executing %s: %v\n", req.Argv[0], err)
	os.Exit(1)
}
