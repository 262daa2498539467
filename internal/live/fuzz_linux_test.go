package live

import (
	"strings"
	"testing"
)

// FuzzDriverLine feeds arbitrary lines to the Peer's reader, as a driver
// that breaks the protocol might write them: each is taken or refused with
// an error naming its line, never a panic, and a refusal never leaves a
// request answered.
func FuzzDriverLine(f *testing.F) {
	for _, s := range []string{
		`{"event":"hello","protocol":1,"stack":"x","api":"posix","options":["SO_KEEPALIVE"],"ret":1,"t":5}`,
		`{"id":1,"ret":3,"t":7}`,
		`{"id":1,"ret":-1,"errno":110,"errno_name":"ETIMEDOUT","t":7}`,
		`{"id":1,"event":"recv","fd":3,"ret":0,"errno_name":"ECONNABORTED","t":9}`,
		`{"id":2,"fail":"no such op"}`,
		`{"id":18446744073709551615}`,
		`{"id":1,"ret":1e99}`,
		`[1,2,3]`,
		`not json`,
		`{"id":1,"errno_name":"` + strings.Repeat("E", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		p := &Peer{
			pending: map[uint64]chan message{1: make(chan message, 1)},
			hello:   make(chan message, 1),
			queued:  make(chan struct{}, 1),
		}
		_, err := p.take(7, line)
		if err != nil && !strings.Contains(err.Error(), "line 7") {
			t.Errorf("error %q does not name the line", err)
		}
		if err != nil && len(err.Error()) > 600 {
			t.Errorf("error of %d bytes: the line is not clipped", len(err.Error()))
		}
	})
}
