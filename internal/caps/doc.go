// Package caps says whether this process may build network namespaces: the
// live lab needs CAP_SYS_ADMIN (unshare, setns) and CAP_NET_ADMIN (veth
// pairs, addresses), and where they are missing it says so instead of
// failing later with a bare EPERM. It is Linux's only.
package caps
