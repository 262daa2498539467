//go:build !linux

package live

// MaybeRunPeer does nothing here: the lab needs Linux's network namespaces,
// so this process is never a peer helper.
func MaybeRunPeer() {}
