package redis

import (
	_ "embed"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts. Each file's header gives its keys, arguments, reply and
// why it is safe. The scripts that touch a pool's policy indexes start
// with lib.lua, so that each stays one self-contained, atomic script.
// Script.Run sends EVALSHA and falls back to EVAL when the server answers
// NOSCRIPT (after a restart or failover), so scripts are reloaded without
// anyone noticing.
var (
	//go:embed lib.lua
	libSrc string
	//go:embed join.lua
	joinSrc string
	//go:embed search.lua
	searchSrc string
	//go:embed match.lua
	matchSrc string
	//go:embed claim.lua
	claimSrc string
	//go:embed rewake.lua
	rewakeSrc string
	//go:embed leave.lua
	leaveSrc string
	//go:embed requeue.lua
	requeueSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed poolsize.lua
	poolSizeSrc string
	//go:embed lease.lua
	leaseSrc string
	//go:embed sweep.lua
	sweepSrc string

	// scriptSources maps each script's file name to the source sent to
	// Redis; hook.go names commands by it.
	scriptSources = map[string]string{
		"join.lua":     libSrc + joinSrc,
		"search.lua":   libSrc + searchSrc,
		"match.lua":    libSrc + matchSrc,
		"claim.lua":    libSrc + claimSrc,
		"rewake.lua":   rewakeSrc,
		"leave.lua":    libSrc + leaveSrc,
		"requeue.lua":  libSrc + requeueSrc,
		"release.lua":  releaseSrc,
		"poolsize.lua": libSrc + poolSizeSrc,
		"lease.lua":    leaseSrc,
		"sweep.lua":    libSrc + sweepSrc,
		"window.lua":   windowSrc,
	}

	joinScript     = goredis.NewScript(scriptSources["join.lua"])
	searchScript   = goredis.NewScript(scriptSources["search.lua"])
	matchScript    = goredis.NewScript(scriptSources["match.lua"])
	claimScript    = goredis.NewScript(scriptSources["claim.lua"])
	rewakeScript   = goredis.NewScript(scriptSources["rewake.lua"])
	leaveScript    = goredis.NewScript(scriptSources["leave.lua"])
	requeueScript  = goredis.NewScript(scriptSources["requeue.lua"])
	releaseScript  = goredis.NewScript(scriptSources["release.lua"])
	poolSizeScript = goredis.NewScript(scriptSources["poolsize.lua"])
	leaseScript    = goredis.NewScript(scriptSources["lease.lua"])
	sweepScript    = goredis.NewScript(scriptSources["sweep.lua"])
)
