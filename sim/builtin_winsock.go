package sim

import (
	"encoding/binary"
	"net/netip"
	"time"

	"kasim/sockopt"
)

// dialWinsock opens one client connection the way a Windows application
// does: SO_KEEPALIVE before connect (the system's timing), SIO_KEEPALIVE_VALS
// and TCP_KEEPCNT if the run asks for other values, an overlapped connect,
// the request, and a receive always in progress. When keep-alive gives up,
// the receive in progress fails, and so does one more call after it.
func (r *builtinRun) dialWinsock(raddr netip.AddrPort, done func()) {
	ws, rec, b, buf := r.ws, r.rec, r.b, r.buf
	s := ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
	if s == sockopt.INVALID_SOCKET {
		done()
		return
	}
	conn := ws.Conn(s)
	ws.Setsockopt(s, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, binary.LittleEndian.AppendUint32(nil, 1), 4)
	if b.Idle != 0 || b.Interval != 0 {
		vals := binary.LittleEndian.AppendUint32(nil, 1)
		vals = binary.LittleEndian.AppendUint32(vals, uint32(r.idle/time.Millisecond))
		vals = binary.LittleEndian.AppendUint32(vals, uint32(r.interval/time.Millisecond))
		var ret uint32
		ws.WSAIoctl(s, sockopt.SIO_KEEPALIVE_VALS, vals, nil, &ret)
	}
	if b.Count != 0 {
		ws.Setsockopt(s, sockopt.IPPROTO_TCP, sockopt.TCP_KEEPCNT, binary.LittleEndian.AppendUint32(nil, uint32(b.Count)), 4)
	}
	var onRecv func(n int, e sockopt.WSAError)
	onRecv = func(n int, e sockopt.WSAError) {
		if e == (sockopt.WSAError{}) && n > 0 {
			ws.RecvAsync(s, buf, onRecv) // keep a receive in progress
			return
		}
		if e != (sockopt.WSAError{}) {
			rec.AppError(r.net.Now(), conn, "recv", sockopt.Errno{Name: e.Name, Code: e.Code})
			// The next call learns what later calls get.
			if ws.Recv(s, buf) == sockopt.SOCKET_ERROR {
				le := ws.LastError()
				rec.AppError(r.net.Now(), conn, "recv", sockopt.Errno{Name: le.Name, Code: le.Code})
			}
		}
		ws.Closesocket(s)
		done()
	}
	ws.ConnectEx(s, raddr, func(e sockopt.WSAError) {
		if e != (sockopt.WSAError{}) {
			rec.AppError(r.net.Now(), conn, "connect", sockopt.Errno{Name: e.Name, Code: e.Code})
			done()
			return
		}
		ws.Send(s, Request)
		ws.RecvAsync(s, buf, onRecv)
	})
}
