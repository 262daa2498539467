// Package lwip ships kasim's DUT driver for lwIP, the embedded TCP/IP
// stack, as C source, and builds it against the system's liblwip.
//
// The driver (kasim-dut-lwip.c, embedded here as Source) speaks the
// protocol of docs/dut-protocol.md: it attaches lwIP to the TAP device
// kasim gives it, with lwIP's unix port (its tcpip thread and tapif), and
// makes lwIP's socket calls (lwip_socket, lwip_setsockopt, ...) as kasim
// asks. Build compiles it with the system's C compiler and
// `pkg-config --cflags --libs lwip`: on Debian and Ubuntu, `apt-get
// install liblwip-dev`. Run it with `kasim conform --dut PATH`.
//
// The source is embedded rather than built by `go build` so that kasim
// needs no cgo and no lwIP unless this driver is wanted.
package lwip

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Source is the driver's C source.
//
//go:embed kasim-dut-lwip.c
var Source []byte

// ErrNoLwIP is wrapped by Build's error when lwIP's development files (or
// pkg-config, which finds them) are missing.
var ErrNoLwIP = errors.New("liblwip-dev is not installed (apt-get install liblwip-dev)")

// ErrNoCompiler is wrapped by Build's error when there is no C compiler.
var ErrNoCompiler = errors.New("no C compiler: install gcc, or set CC")

// maxOutput bounds the compiler output Build quotes in an error.
const maxOutput = 4096

// Build compiles Source into an executable in dir, creating dir if need be,
// and returns its path. The name carries a hash of the source, the
// compiler and the flags, so a changed source is rebuilt and an unchanged
// one reused; the executable is written under a temporary name and renamed
// into place, so concurrent Builds (say, two test binaries) never see a
// half-written file.
func Build(dir string) (string, error) {
	ccArgs := strings.Fields(os.Getenv("CC"))
	if len(ccArgs) == 0 {
		ccArgs = []string{"cc"}
	}
	cc, err := exec.LookPath(ccArgs[0])
	if err != nil {
		return "", fmt.Errorf("lwip: %s: %w", ccArgs[0], ErrNoCompiler)
	}
	flags, err := pkgConfig()
	if err != nil {
		return "", err
	}

	h := sha256.New()
	h.Write(Source)
	fmt.Fprintf(h, "\x00%q\x00%q", append([]string{cc}, ccArgs[1:]...), flags)
	path := filepath.Join(dir, "kasim-dut-lwip-"+hex.EncodeToString(h.Sum(nil))[:12])
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path, nil
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lwip: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", fmt.Errorf("lwip: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "kasim-dut-lwip.c")
	if err := os.WriteFile(src, Source, 0o644); err != nil {
		return "", fmt.Errorf("lwip: %w", err)
	}
	exe := filepath.Join(tmp, "kasim-dut-lwip")
	// The libraries go after the source, or the linker drops them.
	args := append(append([]string{}, ccArgs[1:]...), "-std=gnu11", "-O2", "-Wall", "-pthread", "-o", exe, src)
	args = append(args, flags...)
	cmd := exec.Command(cc, args...)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("lwip: compiling the driver (%s %s): %v:\n%s", cc, strings.Join(args, " "), err, clip(out.String()))
	}
	if err := os.Rename(exe, path); err != nil {
		return "", fmt.Errorf("lwip: %w", err)
	}
	return path, nil
}

// pkgConfig returns lwIP's compiler and linker flags.
func pkgConfig() ([]string, error) {
	if _, err := exec.LookPath("pkg-config"); err != nil {
		return nil, fmt.Errorf("lwip: pkg-config not found (apt-get install pkg-config): %w", ErrNoLwIP)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("pkg-config", "--cflags", "--libs", "lwip")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lwip: pkg-config --cflags --libs lwip: %v: %s: %w", err, strings.TrimSpace(clip(stderr.String())), ErrNoLwIP)
	}
	return strings.Fields(string(out)), nil
}

// clip keeps the start of a compiler's output, where the first error is.
func clip(s string) string {
	if len(s) <= maxOutput {
		return s
	}
	return s[:maxOutput] + fmt.Sprintf("\n... (%d more bytes)", len(s)-maxOutput)
}
