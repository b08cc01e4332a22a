package web

import (
	"bufio"
	"net"
	"net/http"
)

// The buffers an accepted WebSocket reads and writes through for its whole
// life. Client frames are small JSON (at most readLimit) and so are ours
// (a match_found with its room is about 600 bytes); a larger frame still
// passes, in more than one system call.
const (
	readBuffer  = 1 << 10
	writeBuffer = 2 << 10
)

// smallBuffers hands coder/websocket, which keeps the buffers of the
// hijacked connection, smaller ones than net/http's 4 KiB each: on an idle
// socket those 8 KiB were half of its heap.
type smallBuffers struct{ http.ResponseWriter }

// Unwrap lets http.ResponseController reach the ResponseWriter.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over with net/http's buffers swapped for
// small ones, unless they hold bytes already read or not yet written.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r, wr := brw.Reader, brw.Writer
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(conn, readBuffer)
	}
	if wr.Buffered() == 0 {
		wr = bufio.NewWriterSize(conn, writeBuffer)
	}
	return conn, bufio.NewReadWriter(r, wr), nil
}
