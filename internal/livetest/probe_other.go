//go:build !linux

package livetest

func probe() string { return "the live lab runs on Linux only" }
