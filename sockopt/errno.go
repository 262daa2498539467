// Package sockopt is the socket-call surface of simulated connections: the
// calls an application makes, and the error names and codes it gets back.
package sockopt

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/abi/linux/errno"
	"gvisor.dev/gvisor/pkg/syserr"
	"gvisor.dev/gvisor/pkg/tcpip"

	"kasim/stack"
)

// ErrorCode is an error as an application sees it: a symbolic name and its
// number. The zero ErrorCode means no error.
type ErrorCode struct {
	Name string
	Code int
}

func (e ErrorCode) String() string { return fmt.Sprintf("%s (%d)", e.Name, e.Code) }

// Errno is a POSIX error. Numbers differ between systems: these variables
// and the errors of the stack are Linux's, and a POSIX surface renumbers
// what it returns as its Dialect's system does.
type Errno = ErrorCode

// errnoNames names the Linux errnos a TCP socket call can return.
var errnoNames = map[errno.Errno]string{
	errno.EPERM: "EPERM", errno.EINTR: "EINTR", errno.EBADF: "EBADF", errno.EAGAIN: "EAGAIN",
	errno.ENOMEM: "ENOMEM", errno.EFAULT: "EFAULT", errno.EINVAL: "EINVAL", errno.EPIPE: "EPIPE",
	errno.ENOTSOCK: "ENOTSOCK", errno.EDESTADDRREQ: "EDESTADDRREQ", errno.EMSGSIZE: "EMSGSIZE",
	errno.EPROTOTYPE: "EPROTOTYPE", errno.ENOPROTOOPT: "ENOPROTOOPT", errno.EOPNOTSUPP: "EOPNOTSUPP",
	errno.EPROTONOSUPPORT: "EPROTONOSUPPORT", errno.ESOCKTNOSUPPORT: "ESOCKTNOSUPPORT",
	errno.EAFNOSUPPORT: "EAFNOSUPPORT", errno.EADDRINUSE: "EADDRINUSE", errno.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	errno.ENETDOWN: "ENETDOWN", errno.ENETUNREACH: "ENETUNREACH", errno.ENETRESET: "ENETRESET",
	errno.ECONNABORTED: "ECONNABORTED", errno.ECONNRESET: "ECONNRESET", errno.ENOBUFS: "ENOBUFS",
	errno.EISCONN: "EISCONN", errno.ENOTCONN: "ENOTCONN", errno.ESHUTDOWN: "ESHUTDOWN",
	errno.ETIMEDOUT: "ETIMEDOUT", errno.ECONNREFUSED: "ECONNREFUSED", errno.EHOSTDOWN: "EHOSTDOWN",
	errno.EHOSTUNREACH: "EHOSTUNREACH", errno.EALREADY: "EALREADY", errno.EINPROGRESS: "EINPROGRESS",
}

// ErrnoOf returns the errno a POSIX application gets for a gVisor error,
// using gVisor's own translation (the one its sentry uses for Linux apps).
func ErrnoOf(err tcpip.Error) Errno {
	n := syserr.TranslateNetstackError(err).ToLinux()
	name, ok := errnoNames[n]
	if !ok {
		name = fmt.Sprintf("errno %d", uint32(n))
	}
	return Errno{Name: name, Code: int(n)}
}

// ErrnoFromError returns the errno behind a failed stack call, if err is one
// (an *stack.OpError, possibly wrapped).
func ErrnoFromError(err error) (Errno, bool) {
	if errors.Is(err, stack.ErrWouldBlock) {
		return Errno{Name: "EAGAIN", Code: int(errno.EAGAIN)}, true
	}
	var op *stack.OpError
	if errors.As(err, &op) {
		return ErrnoOf(op.Err), true
	}
	return Errno{}, false
}
