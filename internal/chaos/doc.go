// Package chaos holds the fault-injection suite for Ferry (issue 8). Its tests run Redis as a
// private redis-server (internal/redisproc) that they SIGKILL and restart, and reach it
// through a fault proxy (internal/faultproxy) that cuts or slows connections.
package chaos
