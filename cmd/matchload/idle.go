package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// IdleSummary is the result of idle mode (-idle N): N authenticated
// sockets, one player each, opened and held without a single join, for
// measuring what an idle connection costs the server.
type IdleSummary struct {
	Sockets int `json:"sockets"` // asked for (-idle)
	Opened  int `json:"opened"`  // handshakes that succeeded
	Failed  int `json:"failed"`  // logins or handshakes that failed
	// OpenS is how long opening them took, from the first dial to the
	// last handshake answered.
	OpenS float64 `json:"open_s"`
	// HeldS is how long they were held once all were open.
	HeldS float64 `json:"held_s"`
	// Lost counts sockets that closed while held (the server closed them,
	// e.g. for a missed pong, or the network did).
	Lost int `json:"lost"`
	// OpenAtEnd is how many were still open when the hold ended: opened
	// less lost.
	OpenAtEnd int `json:"open_at_end"`
}

// idleRun opens cfg.idle sockets, at most preconnectWorkers handshakes at
// a time, and holds them until cfg.duration passes (0: until ctx ends).
// Each socket has a read loop, which is also what answers the server's
// pings. Once every socket is open or has failed it writes a line
// starting "matchload: idle:" to progress, so a script can wait for it.
func (r *runner) idleRun(ctx context.Context, progress io.Writer, tty bool) *result {
	cfg := r.cfg
	defer r.client.CloseIdleConnections()
	r.players = make([]*player, 0, cfg.idle)
	holdCtx, stopHold := context.WithCancel(ctx)
	defer stopHold()
	var lost atomic.Int64
	var readers sync.WaitGroup

	r.start = time.Now()
	var watchers sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(holdCtx)
	if cfg.progress && progress != nil {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-watchCtx.Done():
					if tty {
						fmt.Fprintln(progress)
					}
					return
				case <-t.C:
				}
				line := fmt.Sprintf("%5.1fs  idle sockets open %d of %d  failed %d  lost %d  errors %d",
					time.Since(r.start).Seconds(), r.c.open.Load(), cfg.idle, r.c.dialFailed.Load(), lost.Load(), r.c.errorTotal())
				if tty {
					fmt.Fprintf(progress, "\r%-100s", line)
				} else {
					fmt.Fprintln(progress, line)
				}
			}
		}()
	}

	// Open them, preconnectWorkers at a time.
	sem := make(chan struct{}, preconnectWorkers)
	var dials sync.WaitGroup
	for i := range cfg.idle {
		p := r.newPlayer(i)
		select {
		case sem <- struct{}{}:
		case <-holdCtx.Done():
		}
		if holdCtx.Err() != nil {
			break
		}
		r.c.started.Add(1)
		dials.Add(1)
		go func() {
			defer dials.Done()
			conn, err := p.connect(holdCtx, p.plan.url)
			<-sem
			if err != nil {
				if holdCtx.Err() != nil {
					p.finish(outUnfinished)
				} else {
					p.finish(outFailed)
				}
				return
			}
			p.setConn(conn, p.plan.url)
			readers.Add(1)
			go func() {
				defer readers.Done()
				p.idleRead(holdCtx, conn, &lost)
			}()
		}()
	}
	dials.Wait()
	opened := time.Now()
	openS := opened.Sub(r.start).Seconds()
	if ctx.Err() == nil && progress != nil {
		if tty {
			fmt.Fprintln(progress)
		}
		fmt.Fprintf(progress, "matchload: idle: %d of %d sockets open after %.1fs (%d failed); holding them%s\n",
			r.c.open.Load(), cfg.idle, openS, r.c.dialFailed.Load(), holdFor(cfg.duration))
	}

	// Hold.
	if cfg.duration > 0 {
		t := time.NewTimer(cfg.duration)
		select {
		case <-t.C:
		case <-holdCtx.Done():
		}
		t.Stop()
	} else {
		<-holdCtx.Done()
	}
	end := time.Now()
	stopHold() // every read loop ends and closes its socket
	readers.Wait()
	stopWatch()
	watchers.Wait()

	res := r.result(end)
	rep := &res.report
	rep.Interrupted = ctx.Err() != nil
	rep.Idle = &IdleSummary{
		Sockets:   cfg.idle,
		Opened:    rep.Connections.Opened,
		Failed:    rep.Connections.Failed,
		OpenS:     math.Round(openS*1000) / 1000,
		HeldS:     math.Round(end.Sub(opened).Seconds()*1000) / 1000,
		Lost:      int(lost.Load()),
		OpenAtEnd: rep.Connections.Opened - int(lost.Load()),
	}
	return res
}

// holdFor describes the hold for the "idle:" line.
func holdFor(d time.Duration) string {
	if d > 0 {
		return fmt.Sprintf(" for %v (Ctrl-C or SIGTERM ends sooner)", d)
	}
	return " until Ctrl-C or SIGTERM"
}

// idleRead reads an idle socket until ctx ends (then closes it) or the
// socket fails (a loss). Reading is what answers the server's pings; an
// idle socket is sent nothing else, so any frame is counted as
// unexpected.
func (p *player) idleRead(ctx context.Context, conn *websocket.Conn, lost *atomic.Int64) {
	defer func() {
		p.mu.Lock()
		p.markClosedLocked(conn)
		p.mu.Unlock()
		conn.CloseNow()
	}()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				p.finish(outUnfinished)
				return
			}
			lost.Add(1)
			p.r.c.fail("connection_lost", truncate(err.Error()))
			p.finish(outFailed)
			return
		}
		p.r.c.fail("unexpected_frame", truncate(string(data)))
	}
}
