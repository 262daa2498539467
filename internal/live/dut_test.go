package live

import (
	"strings"
	"testing"
	"time"
)

// A driver that breaks the protocol gets one error that says how, within
// seconds, and leaves nothing behind (the cleanup test's checks run on
// every lab these tests make too: no namespace outlives its helper).
func TestBrokenDriversAreNamed(t *testing.T) {
	needLive(t)
	hello := `{"event":"hello","protocol":1,"stack":"fake","version":"0","api":"posix","options":["SO_KEEPALIVE"]}`
	for _, c := range []struct {
		name, script, want string
	}{
		{"not JSON", `echo 'this is not json'; sleep 30`, "driver sh line 1: not a JSON object"},
		{"silent", `sleep 30`, "wrote no hello within"},
		{"exits at once", `echo oops >&2; exit 3`, "exit status 3"},
		{"wrong protocol", `echo '{"event":"hello","protocol":7,"api":"posix"}'; sleep 30`, "speaks protocol 7"},
		{"wrong api", `echo '{"event":"hello","protocol":1,"api":"winsock"}'; sleep 30`, `api "winsock"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			lab, err := NewLab(Options{DUT: []string{"sh", "-c", c.script}})
			if err == nil {
				lab.Close()
				t.Fatalf("NewLab with a driver that %s succeeded", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if took := time.Since(start); took > replyTimeout+5*time.Second {
				t.Errorf("took %v to notice", took)
			}
		})
	}

	// After its hello: a reply to a request never made, a garbled reply,
	// an exit mid-scenario.
	for _, c := range []struct {
		name, after, want string
	}{
		{"stray reply", `read x; echo '{"id":99,"ret":0}'; sleep 30`, "a reply to request 99, which is not waiting for one"},
		{"garbled reply", `read x; echo '{"id":1,'; sleep 30`, "driver sh line 2: not a JSON object"},
		{"exits mid-scenario", `read x; echo bye >&2; exit 1`, "bye"},
		{"fails", `read x; id=$(echo "$x" | sed 's/.*"id":\([0-9]*\).*/\1/'); echo "{\"id\":$id,\"fail\":\"no sockets here\"}"; sleep 30`, "(socket): no sockets here"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lab, err := NewLab(Options{DUT: []string{"sh", "-c", "echo '" + hello + "'; " + c.after}})
			if err != nil {
				t.Fatalf("NewLab: %v", err)
			}
			defer lab.Close()
			if h := lab.Peer().Hello(); h.Stack != "fake" || !h.HasOption("SO_KEEPALIVE") {
				t.Errorf("hello read as %+v", h)
			}
			_, err = lab.Peer().Socket()
			if err == nil {
				t.Fatal("socket succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}
