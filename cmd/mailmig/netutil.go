package main

import (
	"net"
	"strings"
)

func splitAddr(addr string) (host, port string, err error) { return net.SplitHostPort(addr) }

// isLoopbackAddr reports whether a listener address is on loopback.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
