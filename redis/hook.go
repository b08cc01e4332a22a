package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// CommandObserver is told the duration and outcome of each Redis command,
// for metrics. Scripts are named by their file (join, match, …), not by
// their SHA, so labels stay few and readable.
type CommandObserver func(command string, d time.Duration, err error)

// Instrument adds a hook to c that reports every command and pipeline to
// observe. A redis.Nil reply (a key that is not there) is not an error.
func Instrument(c goredis.UniversalClient, observe CommandObserver) {
	c.AddHook(hook{observe})
}

type hook struct{ observe CommandObserver }

// scriptNames maps each script's SHA (for EVALSHA) and source (for the
// EVAL fallback) to its file name. Read-only after package init.
var scriptNames = func() map[string]string {
	m := make(map[string]string)
	for name, src := range scriptSources {
		m[goredis.NewScript(src).Hash()] = name
		m[src] = name
	}
	return m
}()

// commandName labels cmd: the script's file for EVAL/EVALSHA, else the
// command in lower case.
func commandName(cmd goredis.Cmder) string {
	name := strings.ToLower(cmd.Name())
	if name == "evalsha" || name == "eval" {
		if args := cmd.Args(); len(args) > 1 {
			if s, ok := args[1].(string); ok {
				if n, ok := scriptNames[s]; ok {
					return n
				}
			}
		}
	}
	return name
}

func (h hook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := next(ctx, network, addr)
		if err != nil {
			h.observe("dial", time.Since(start), err)
		}
		return c, err
	}
}

func (h hook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(commandName(cmd), time.Since(start), replyError(err))
		return err
	}
}

func (h hook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe("pipeline", time.Since(start), replyError(err))
		return err
	}
}

// replyError drops the errors that are answers, not failures: a missing
// key, and NOSCRIPT (go-redis then loads the script and runs it again).
func replyError(err error) error {
	if errors.Is(err, goredis.Nil) || goredis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil
	}
	return err
}
