package redis

import (
	_ "embed"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts. Each file's header gives its keys, arguments, reply and
// why it is safe. Script.Run sends EVALSHA and falls back to EVAL when the
// server answers NOSCRIPT (after a restart or failover), so scripts are
// reloaded without anyone noticing.
var (
	//go:embed join.lua
	joinSrc string
	//go:embed match.lua
	matchSrc string
	//go:embed leave.lua
	leaveSrc string
	//go:embed lease.lua
	leaseSrc string
	//go:embed sweep.lua
	sweepSrc string
	//go:embed peek.lua
	peekSrc string

	joinScript  = goredis.NewScript(joinSrc)
	matchScript = goredis.NewScript(matchSrc)
	leaveScript = goredis.NewScript(leaveSrc)
	leaseScript = goredis.NewScript(leaseSrc)
	sweepScript = goredis.NewScript(sweepSrc)
	peekScript  = goredis.NewScript(peekSrc)
)
