package sim

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	"kasim/sockopt"
)

// Scaled returns a copy of s with every time the file states multiplied by
// num/den: its duration, the actions' and expectations' times (and the
// delays after triggers), connections' spreads, latencies,
// middlebox idle times, and the times inside keep-alive option values
// (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPALIVE, TCP_USER_TIMEOUT,
// SIO_KEEPALIVE_VALS). kasim conform uses it to play a scenario written in
// hours in seconds. Profile defaults and registry values are not the
// file's times and stay as they are. An option value whose scaled time
// its unit cannot hold (75 s x 1/60 in whole seconds), or that scales to
// nothing, is an error at the action's place: kasim does not round what
// the user gave.
func (s *Scenario) Scaled(num, den int64) (*Scenario, error) {
	if num <= 0 || den <= 0 {
		return nil, fmt.Errorf("scale %d/%d: want a positive fraction", num, den)
	}
	r := big.NewRat(num, den)
	scale := func(d time.Duration) time.Duration {
		x := new(big.Rat).Mul(big.NewRat(int64(d), 1), r)
		q := new(big.Int).Quo(x.Num(), x.Denom()) // whole nanoseconds, rounded down
		if !q.IsInt64() {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(q.Int64())
	}
	out := *s
	out.scaled = true
	out.Duration, out.Latency, out.Middlebox = scale(s.Duration), scale(s.Latency), scale(s.Middlebox)
	out.Conns = slices.Clone(s.Conns)
	for i := range out.Conns {
		out.Conns[i].Spread = scale(out.Conns[i].Spread)
	}
	out.Actions = slices.Clone(s.Actions)
	for i := range out.Actions {
		a := &out.Actions[i]
		a.At, a.Latency, a.Idle = scale(a.At), scale(a.Latency), scale(a.Idle)
		a.Optval = slices.Clone(a.Optval)
		// The times inside an option value: each 4-byte word at these
		// offsets, in this unit.
		var words []int
		var unit time.Duration
		switch {
		case a.Do == DoSetsockopt && len(a.Optval) >= 4:
			if u, timed := s.host(s.socketHost(a)).Resolved.Options().Unit(a.OptName); timed {
				words, unit = []int{0}, u
			}
		case a.Do == DoIoctl && a.Opt == int(sockopt.SIO_KEEPALIVE_VALS) && len(a.Optval) >= 12:
			words, unit = []int{4, 8}, time.Millisecond
		}
		for _, off := range words {
			v := binary.LittleEndian.Uint32(a.Optval[off:])
			if a.Do == DoSetsockopt && int32(v) <= 0 {
				continue // a negative or zero value is an error case (or a default): keep it one
			}
			was := time.Duration(v) * unit
			now := scale(was)
			if now%unit != 0 || now == 0 || now/unit > math.MaxInt32 {
				return nil, fmt.Errorf("%s: %s %s: %v scaled by %d/%d is %v, which it cannot hold in whole %s; choose a scale that keeps it whole",
					a.Pos, a.Do, a.OptName, was, num, den, now, sockopt.UnitName(unit))
			}
			binary.LittleEndian.PutUint32(a.Optval[off:], uint32(now/unit))
		}
	}
	out.Expects = slices.Clone(s.Expects)
	for i := range out.Expects {
		e := &out.Expects[i]
		for _, p := range []**time.Duration{&e.At, &e.From, &e.To} {
			if *p != nil {
				v := scale(**p)
				*p = &v
			}
		}
	}
	return &out, nil
}

func (s *Scenario) host(name string) *HostSpec {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i]
		}
	}
	return nil
}
