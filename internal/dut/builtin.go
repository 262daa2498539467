package dut

import (
	"io"
	"os"
)

// EnvBuiltin names the built-in driver a re-executed kasim runs as
// (KASIM_DUT_BUILTIN=gvisor): a driver written in Go ships inside kasim,
// so `kasim conform --dut gvisor` needs nothing built.
const EnvBuiltin = "KASIM_DUT_BUILTIN"

// Driver runs a driver on the protocol's pipe and returns its exit status.
type Driver func(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int

var builtins = map[string]Driver{}

// Register makes a Go driver built in under name; drivers call it from
// init.
func Register(name string, d Driver) { builtins[name] = d }

// Builtin returns the built-in driver called name.
func Builtin(name string) (Driver, bool) {
	d, ok := builtins[name]
	return d, ok
}

// MaybeRunBuiltin runs the built-in driver EnvBuiltin names and exits, if
// this process was started as one, and returns at once otherwise. A
// program that offers built-in drivers calls it first thing in main (and
// in TestMain), beside live.MaybeRunPeer.
func MaybeRunBuiltin() {
	name := os.Getenv(EnvBuiltin)
	if name == "" {
		return
	}
	d, ok := builtins[name]
	if !ok {
		os.Stderr.WriteString("kasim: " + EnvBuiltin + "=" + name + ": no such built-in driver\n")
		os.Exit(2)
	}
	os.Exit(d(os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
