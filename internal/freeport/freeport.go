// Package freeport picks TCP and UDP ports for processes that need their
// address before they bind it, such as Raft peers listed in each other's
// configuration and local clusters whose ports go into a file.
//
// Binding port 0 and closing the listener is not enough for that. The kernel
// uses the same ephemeral range for the local side of outgoing connections,
// so a released port can be taken by a connection that another test opens a
// moment later. Ports chosen here lie outside the ephemeral range, are free
// for both TCP and UDP when checked, and are returned once per process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range searched below the ephemeral ports.
// Ports under it are left to services that a developer machine may run.
const lowest = 15000

var (
	mu sync.Mutex
	// returned records the ports this process has handed out.
	returned = map[int]bool{}
)

// Take returns n distinct ports on host that were free for TCP and UDP when
// checked. Another program could still bind one before the caller does, but
// only by choosing the same number, because outgoing connections do not use
// these ports.
func Take(host string, n int) ([]int, error) {
	lo, hi := searchRange()
	mu.Lock()
	defer mu.Unlock()
	ports := make([]int, 0, n)
	span := hi - lo + 1
	start := rand.IntN(span)
	for i := 0; i < span && len(ports) < n; i++ {
		p := lo + (start+i)%span
		if returned[p] || !free(host, p) {
			continue
		}
		returned[p] = true
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("freeport: found %d of %d free ports on %s in %d-%d; stop processes that hold ports in that range",
			len(ports), n, host, lo, hi)
	}
	return ports, nil
}

// Addr returns one free host:port on host.
func Addr(host string) (string, error) {
	ports, err := Take(host, 1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(ports[0])), nil
}

// free reports whether port can be bound on host for both TCP and UDP,
// because gossip uses both on one number.
func free(host string, port int) bool {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// searchRange returns the ports to search: those between lowest and the
// start of the ephemeral range, or above its end when that leaves more.
func searchRange() (lo, hi int) {
	ephLo, ephHi, err := ephemeralRange()
	if err != nil {
		ephLo, ephHi = 32768, 60999 // Linux's default
	}
	below := ephLo - lowest
	above := 65535 - ephHi
	if below >= above && below > 0 {
		return lowest, ephLo - 1
	}
	if above > 0 {
		return ephHi + 1, 65535
	}
	// The ephemeral range covers every port. Collisions are then possible,
	// but the search still finds ports that are free now.
	return lowest, 65535
}

func ephemeralRange() (int, int, error) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("invalid ip_local_port_range %q", data)
	}
	lo, err1 := strconv.Atoi(fields[0])
	hi, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil || lo > hi {
		return 0, 0, fmt.Errorf("invalid ip_local_port_range %q", data)
	}
	return lo, hi, nil
}
