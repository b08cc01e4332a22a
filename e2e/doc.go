// Package e2e holds matchd's multi-instance tests: several matchd
// instances, each a real HTTP server with its own Redis client, sharing one
// real redis-server or Redis Cluster, driven by real WebSocket clients,
// with instances crashed and Redis restarted under them. It has no
// non-test code beyond this comment.
package e2e
