package sockopt

import (
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"

	"kasim/stack"
)

func TestErrnoOf(t *testing.T) {
	for _, tc := range []struct {
		err  tcpip.Error
		want Errno
	}{
		{&tcpip.ErrTimeout{}, Errno{"ETIMEDOUT", 110}},
		{&tcpip.ErrConnectionReset{}, Errno{"ECONNRESET", 104}},
		{&tcpip.ErrConnectionRefused{}, Errno{"ECONNREFUSED", 111}},
		{&tcpip.ErrNotConnected{}, Errno{"ENOTCONN", 107}},
		{&tcpip.ErrInvalidOptionValue{}, Errno{"EINVAL", 22}},
		{&tcpip.ErrConnectionAborted{}, Errno{"ECONNABORTED", 103}},
	} {
		if got := ErrnoOf(tc.err); got != tc.want {
			t.Errorf("ErrnoOf(%T) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrnoFromError(t *testing.T) {
	wrapped := fmt.Errorf("context: %w", &stack.OpError{Op: "recv", Err: &tcpip.ErrTimeout{}})
	if got, ok := ErrnoFromError(wrapped); !ok || got.Name != "ETIMEDOUT" {
		t.Errorf("wrapped OpError: %v, %v", got, ok)
	}
	if got, ok := ErrnoFromError(stack.ErrWouldBlock); !ok || got != (Errno{"EAGAIN", 11}) {
		t.Errorf("ErrWouldBlock: %v, %v", got, ok)
	}
	if _, ok := ErrnoFromError(fmt.Errorf("plain")); ok {
		t.Error("a plain error mapped to an errno")
	}
}
