// Command matchload simulates players against one or more matchd
// instances over WebSocket: it logs them in (or mints their tokens),
// joins them to the queue at a fixed rate or all at once, makes some leave
// or drop, checks the matchmaking invariants on every frame, and reports
// time-to-match percentiles, throughput, errors and connections as text
// or JSON, with an optional SVG or PNG chart. With -idle N it instead
// opens N authenticated sockets and holds them without joining, for
// measuring the server's memory per idle connection. `matchload -h` lists
// the flags.
//
// Exit status: 0 when the run held every invariant, 1 when one was
// violated (or no socket could be opened; with -idle, unless every socket
// opened), 2 for bad flags. Ctrl-C stops
// the run and prints the report so far; a second Ctrl-C kills it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "matchload:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, let a second one kill the process as
		// usual, in case the report itself hangs.
		<-ctx.Done()
		stop()
	}()
	os.Exit(execute(ctx, cfg, os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

// isTerminal reports whether f is a terminal (a character device), where
// the progress line can be rewritten in place.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
