package sim

// The top of a scenario file: its settings, hosts and connections.

import (
	"errors"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"kasim/internal/echo"
	"kasim/profile"
)

var scenarioKeys = []string{"name", "description", "seed", "duration", "until", "network", "hosts", "connections", "actions", "expect"}

func (d *decoder) scenario(root *ynode) *Scenario {
	f := d.fields(root, "scenario", scenarioKeys...)
	if f == nil {
		return nil
	}
	s := &Scenario{File: d.file, Seed: 1, Latency: DefaultLatency}
	if n := f["name"]; n != nil {
		s.Name, _ = d.str(n, "name")
	}
	if n := f["description"]; n != nil {
		s.Description, _ = d.str(n, "description")
	}
	if n := f["seed"]; n != nil {
		v, _ := d.integer(n, "seed", 0, math.MaxInt64)
		s.Seed = uint64(v)
	}
	if n := f["duration"]; n != nil {
		var ok bool
		if s.Duration, ok = d.duration(n, "duration", MaxScenarioSpan); ok && s.Duration == 0 {
			d.at(n, "duration: want more than 0: how much virtual time the scenario covers, e.g. 3h")
		}
	} else {
		d.at(root, "duration: missing: say how much virtual time the scenario covers, e.g. duration: 3h")
	}
	if n := f["until"]; n != nil {
		switch v, ok := d.str(n, "until"); {
		case !ok:
		case v == "ended":
			s.UntilEnded = true
		case v == "duration":
		default:
			d.at(n, "until: %q: want ended (stop once every connection's client has seen it end) or duration (the default)", v)
		}
	}
	if n := f["network"]; n != nil {
		nf := d.fields(n, "network", "latency", "loss", "middlebox")
		if v := nf["latency"]; v != nil {
			s.Latency, _ = d.duration(v, "network.latency", time.Minute)
		}
		if v := nf["loss"]; v != nil {
			s.Loss, _ = d.float(v, "network.loss", 0, 0.99)
		}
		if v := nf["middlebox"]; v != nil {
			s.Middlebox, _ = d.duration(v, "network.middlebox", MaxScenarioSpan)
		}
	}
	d.hosts, d.declared = map[string]*HostSpec{}, map[string]bool{}
	for _, key := range []string{"hosts", "connections"} {
		if n := f[key]; n != nil && n.kind == yMap {
			for _, k := range n.keys {
				d.declared[key+"/"+k.value] = true
			}
		}
	}
	if n := f["hosts"]; n != nil {
		s.Hosts = d.hostSpecs(n)
		for i := range s.Hosts {
			d.hosts[s.Hosts[i].Name] = &s.Hosts[i]
		}
	}
	if len(s.Hosts) == 0 && f["hosts"] == nil {
		d.at(root, "hosts: missing: name the hosts, e.g. hosts: {client: {profile: win7}, server: {}}")
	} else if len(s.Hosts) == 0 && len(d.problems) == 0 {
		d.at(f["hosts"], "hosts: empty: a scenario needs at least one host")
	}
	d.conns = map[string]*ConnSpec{}
	if n := f["connections"]; n != nil {
		s.Conns = d.connSpecs(n)
		for i := range s.Conns {
			d.conns[s.Conns[i].Name] = &s.Conns[i]
		}
	}
	if n := f["actions"]; n != nil {
		for _, item := range d.list(n, "actions", MaxScenarioActions) {
			if a, ok := d.action(item, s); ok {
				s.written = append(s.written, a)
			}
		}
		sort.SliceStable(s.written, func(i, j int) bool { return s.written[i].At < s.written[j].At })
	}
	if n := f["expect"]; n != nil {
		for _, item := range d.list(n, "expect", MaxScenarioExpects) {
			if e, ok := d.expect(item, s); ok {
				s.Expects = append(s.Expects, e)
			}
		}
	}
	return s
}

// namedEntries checks that n maps names to entries (at most limit of them)
// and returns the indexes of the entries whose names are valid, reporting
// the others. section is the key n stands under, kind what one entry is.
func (d *decoder) namedEntries(n *ynode, section, kind, shape string, limit int) []int {
	if n.kind != yMap {
		d.at(n, "%s: want a mapping of %s names to %s, found %s", section, kind, shape, n.describe())
		return nil
	}
	if len(n.keys) > limit {
		d.at(n, "%s: %d %ss, more than the limit of %d", section, len(n.keys), kind, limit)
		return nil
	}
	var valid []int
	for i, k := range n.keys {
		if !validName(k.value) {
			d.at(k, "%s %q: want a name of letters, digits, - and _ (at most 32)", kind, k.value)
			continue
		}
		valid = append(valid, i)
	}
	return valid
}

func (d *decoder) hostSpecs(n *ynode) []HostSpec {
	var out []HostSpec
	for _, i := range d.namedEntries(n, "hosts", "host", "their settings, e.g. client: {profile: win7}", MaxScenarioHosts) {
		k := n.keys[i]
		h := HostSpec{Pos: d.pos(k), Name: k.value, Profile: "gvisor"}
		v := n.vals[i]
		what := "host " + k.value
		f := map[string]*ynode{}
		if v.kind != yScalar || v.tag != "null" {
			if f = d.fields(v, what, "profile", "registry", "set", "sysctl"); f == nil {
				f = map[string]*ynode{}
			}
		}
		if p := f["profile"]; p != nil {
			h.Profile, _ = d.str(p, what+": profile")
		}
		h.Registry = d.settings(f["registry"], what+": registry")
		h.Set = d.settings(f["set"], what+": set")
		h.Sysctl = d.sysctls(f["sysctl"], what+": sysctl")
		h.nodes = hostNodes{key: k, profile: f["profile"], registry: f["registry"], set: f["set"], sysctl: f["sysctl"]}
		out = append(out, h)
	}
	return out
}

// bindHost resolves h's profile, with its registry values and settings
// (profile.Lookup), into h.Resolved; a profile named in overrides replaces
// the file's, and problems with it point at the host.
func (d *decoder) bindHost(h *HostSpec, overrides map[string]string) {
	h.Resolved = nil
	what := "host " + h.Name
	profileNode := h.nodes.profile
	if p, ok := overrides[h.Name]; ok {
		h.Profile = p
		if profileNode == nil {
			profileNode = h.nodes.key // problems with the override point at the host
		}
	}
	set := h.Set
	h.SysctlIgnored = nil
	if len(h.Sysctl) > 0 {
		bare, err := profile.Lookup(h.Profile, nil, nil)
		for _, kv := range h.Sysctl {
			key, _, _ := strings.Cut(kv, "=")
			if err == nil && bare.TakesSysctl(key) {
				set = append(slices.Clone(set), kv)
			} else {
				h.SysctlIgnored = append(h.SysctlIgnored, kv)
			}
		}
	}
	p, err := profile.Lookup(h.Profile, h.Registry, set)
	var le *profile.LookupError
	switch {
	case err == nil:
		h.Resolved = &p
	case errors.Is(err, profile.ErrNoRegistry):
		d.at(h.nodes.registry, "%s: registry applies to Windows profiles; %s has none (its settings go under set)", what, h.Profile)
	case errors.As(err, &le) && (le.Part == "registry" || le.Part == "set"):
		node := map[string]*ynode{"registry": h.nodes.registry, "set": h.nodes.set}[le.Part]
		for _, e := range le.Errors() {
			part, at := le.Part, node
			if le.Part == "set" && slices.ContainsFunc(h.Sysctl, func(kv string) bool { return strings.HasPrefix(e.Error(), kv+":") }) {
				part, at = "sysctl", h.nodes.sysctl // a sysctl the profile took as a setting
			}
			d.at(at, "%s: %s: %v", what, part, e)
		}
	default:
		all := profile.Names()
		d.at(profileNode, "%s: unknown profile %q: want one of %s%s", what, h.Profile, strings.Join(all, ", "), suggest(h.Profile, all))
	}
}

// settings reads a mapping of NAME: value into NAME=VALUE strings, in file
// order, for profile.Lookup.
func (d *decoder) settings(n *ynode, what string) []string {
	if n == nil {
		return nil
	}
	if n.kind != yMap {
		d.at(n, "%s: want a mapping of NAME: value, found %s", what, n.describe())
		return nil
	}
	var out []string
	for i, k := range n.keys {
		v := n.vals[i]
		if v.kind != yScalar || v.tag == "null" {
			d.at(v, "%s: %s: want a value, found %s", what, k.value, v.describe())
			continue
		}
		out = append(out, k.value+"="+v.value)
	}
	return out
}

// sysctls reads a host's sysctl: mapping, whose names must be Linux
// sysctls kasim models (profile.Sysctls).
func (d *decoder) sysctls(n *ynode, what string) []string {
	known := profile.Sysctls()
	if n != nil && n.kind == yMap {
		for _, k := range n.keys {
			if !slices.Contains(known, k.value) {
				d.at(k, "%s: %s: kasim models only %s%s", what, k.value, echo.OrList(known), suggest(k.value, known))
			}
		}
	}
	return slices.DeleteFunc(d.settings(n, what), func(kv string) bool {
		key, _, _ := strings.Cut(kv, "=")
		return !slices.Contains(known, key)
	})
}

// unknownRef reports a reference to a host or connection the file does not
// declare, listing the valid ones; a name declared but invalid has had its
// own problem reported already.
func (d *decoder) unknownRef(n *ynode, what, section, kind, name string, known []string) {
	if d.declared[section+"/"+name] {
		return
	}
	list := "the file declares no " + kind
	if len(known) > 0 {
		list = "the file's " + kind + "s are " + strings.Join(known, ", ")
	}
	d.at(n, "%s: no %s %q; %s%s", what, kind, name, list, suggest(name, known))
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (d *decoder) hostRef(n *ynode, what string) (string, bool) {
	name, ok := d.str(n, what)
	if !ok {
		return "", false
	}
	if d.hosts[name] == nil {
		d.unknownRef(n, what, "hosts", "host", name, slices.Sorted(maps.Keys(d.hosts)))
		return "", false
	}
	return name, true
}

func (d *decoder) connSpecs(n *ynode) []ConnSpec {
	var out []ConnSpec
	members := 0
	for _, i := range d.namedEntries(n, "connections", "connection", "{client: HOST, server: HOST, port: N}", MaxScenarioConns) {
		k := n.keys[i]
		what := "connection " + k.value
		c := ConnSpec{Pos: d.pos(k), Name: k.value, Port: ServerPort}
		f := d.fields(n.vals[i], what, "client", "server", "port", "count", "spread")
		if f == nil {
			continue
		}
		ok := true
		for _, end := range []struct {
			key string
			dst *string
		}{{"client", &c.Client}, {"server", &c.Server}} {
			v := f[end.key]
			if v == nil {
				d.at(n.vals[i], "%s: %s: missing: name the host", what, end.key)
				ok = false
				continue
			}
			var good bool
			if *end.dst, good = d.hostRef(v, what+": "+end.key); !good {
				ok = false
			}
		}
		if ok && c.Client == c.Server {
			d.at(n.vals[i], "%s: client and server are both %q: want two different hosts", what, c.Client)
			ok = false
		}
		if v := f["port"]; v != nil {
			p, good := d.integer(v, what+": port", 1, 65535)
			c.Port = uint16(p)
			ok = ok && good
		}
		ok = d.connCount(f, what, &c, &members) && ok
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// connCount reads a connection's count and spread; members counts the
// connections so far, which MaxScenarioConns bounds.
func (d *decoder) connCount(f map[string]*ynode, what string, c *ConnSpec, members *int) bool {
	ok := true
	if v := f["count"]; v != nil {
		n, good := d.integer(v, what+": count", 1, MaxScenarioConns)
		c.Count, ok = int(n), good
		if good && *members+c.Count > MaxScenarioConns {
			d.at(v, "%s: count %d: the scenario's connections come to %d with these, more than the limit of %d", what, c.Count, *members+c.Count, MaxScenarioConns)
			ok = false
		}
	}
	*members += c.members()
	if v := f["spread"]; v != nil {
		var good bool
		if c.Spread, good = d.duration(v, what+": spread", MaxScenarioSpan); good && c.members() == 1 {
			d.at(v, "%s: spread: spreads the starts of several connections; give count too", what)
			good = false
		}
		ok = ok && good
	}
	return ok
}
