// Package matchd is the domain core of the matchd matchmaker: tickets, the
// queue and its pairing rule, match rooms, the question bank, the error
// vocabulary, and the Matchmaker service that backends implement.
//
// It does no I/O. Backends (package memory, later redis) store tickets and
// rooms and run the pairing; the edge (package web) speaks HTTP and
// WebSocket and maps this package's error codes to wire errors in one place.
package matchd
