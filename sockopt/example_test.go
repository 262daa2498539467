package sockopt_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"kasim/sockopt"
	"kasim/stack"
)

// vista is Winsock as Windows Vista and later offer it.
var vista = sockopt.Features{Idle: 2 * time.Hour, Interval: time.Second, ProbeCount: 10, RejectDuringConnect: true}

func host() (*stack.Network, *stack.Host, netip.AddrPort) {
	n := stack.NewNetwork(stack.Config{Seed: 1})
	client, _ := n.AddHost("client")
	server, _ := n.AddHost("server")
	server.Listen("tcp4", 80, stack.KeepAlive{}, nil)
	return n, client, netip.AddrPortFrom(server.Addr(), 80)
}

// The seed document's example: switch SO_KEEPALIVE on, then read it back.
func ExampleWinsock_Setsockopt() {
	n, client, _ := host()
	defer n.Close()
	ws := sockopt.NewWinsock(client, vista)
	ws.WSAStartup(0x0202) // MAKEWORD(2, 2)
	ListenSocket := ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)

	bOptVal := binary.LittleEndian.AppendUint32(nil, 1) // BOOL bOptVal = TRUE;
	bOptLen := 4                                        // int bOptLen = sizeof(BOOL);
	iResult := ws.Setsockopt(ListenSocket, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, bOptVal, bOptLen)
	if iResult == sockopt.SOCKET_ERROR {
		fmt.Printf("setsockopt for SO_KEEPALIVE failed with error: %d\n", ws.WSAGetLastError())
	} else {
		fmt.Println("Set SO_KEEPALIVE: ON")
	}

	iOptVal := make([]byte, 4) // int iOptVal = 0;
	iOptLen := 4               // int iOptLen = sizeof(int);
	iResult = ws.Getsockopt(ListenSocket, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, iOptVal, &iOptLen)
	if iResult == sockopt.SOCKET_ERROR {
		fmt.Printf("getsockopt for SO_KEEPALIVE failed with error: %d\n", ws.WSAGetLastError())
	} else {
		fmt.Printf("SO_KEEPALIVE Value: %d\n", binary.LittleEndian.Uint32(iOptVal))
	}
	// Output:
	// Set SO_KEEPALIVE: ON
	// SO_KEEPALIVE Value: 1
}

// SIO_KEEPALIVE_VALS sets keep-alive on, 30 s idle and 1 s interval, in
// milliseconds, for one connection.
func ExampleWinsock_WSAIoctl() {
	n, client, _ := host()
	defer n.Close()
	ws := sockopt.NewWinsock(client, vista)
	ws.WSAStartup(0x0202)
	s := ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)

	// struct tcp_keepalive alive = { 1, 30000, 1000 };
	alive := binary.LittleEndian.AppendUint32(nil, 1)
	alive = binary.LittleEndian.AppendUint32(alive, 30000)
	alive = binary.LittleEndian.AppendUint32(alive, 1000)
	var dwBytesRet uint32
	if ws.WSAIoctl(s, sockopt.SIO_KEEPALIVE_VALS, alive, nil, &dwBytesRet) == sockopt.SOCKET_ERROR {
		fmt.Printf("WSAIoctl failed with error: %d\n", ws.WSAGetLastError())
		return
	}
	ka := ws.Conn(s).KeepAlive()
	fmt.Println("keep-alive on:", ka.Enabled, "idle:", ka.Idle, "interval:", ka.Interval)
	// Output:
	// keep-alive on: true idle: 30s interval: 1s
}

// The error path: on Vista and later, SO_KEEPALIVE fails while a connect is
// in progress, and a receive in progress when keep-alive gives up fails with
// WSAENETRESET.
func ExampleWinsock_errors() {
	n, client, server := host()
	defer n.Close()
	ws := sockopt.NewWinsock(client, vista)
	ws.WSAStartup(0x0202)
	s := ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
	on := binary.LittleEndian.AppendUint32(nil, 1)

	ws.Connect(s, server) // non-blocking: WSAEWOULDBLOCK, connect in progress
	if ws.Setsockopt(s, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, on, 4) == sockopt.SOCKET_ERROR {
		fmt.Println("during connect:", ws.LastError())
	}
	n.RunFor(time.Second)
	if ws.Setsockopt(s, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, on, 4) == 0 {
		fmt.Println("once connected: 0")
	}
	ws.RecvAsync(s, make([]byte, 512), func(_ int, err sockopt.WSAError) {
		fmt.Println("recv in progress:", err)
	})
	n.Silence(n.Host("server"), stack.Both)
	n.RunFor(3 * time.Hour)
	ws.Recv(s, make([]byte, 512))
	fmt.Println("next recv:", ws.LastError())
	// Output:
	// during connect: WSAEINVAL (10022)
	// once connected: 0
	// recv in progress: WSAENETRESET (10052)
	// next recv: WSAECONNRESET (10054)
}
