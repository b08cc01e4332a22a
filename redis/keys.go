package redis

// keys names the Redis keys of one matching pool. Every key carries the
// pool's hash tag {pool}, so all of a pool's keys live in one Redis
// Cluster slot and its scripts can touch them atomically — including a
// claim that pairs tickets of different buckets (a player who states no
// difficulty may meet any). Different pools can live on different nodes.
// docs/redis.md describes the layout; the policy indexes (buckets, bands,
// wake, history) are named in lib.lua, which files and finds tickets in
// them.
type keys struct {
	prefix  string // "matchd:{pool}:"
	queue   string // ZSET player -> seq
	seq     string // STRING ticket counter
	tickets string // HASH player -> ticket JSON
	owners  string // HASH player -> owning instance
	leases  string // ZSET instance -> lease expiry (ms)
	rooms   string // ZSET room key -> expiry (ms): live rooms
	wake    string // ZSET player -> when their rules widen next (ms)
	buckets string // HASH bucket -> waiting tickets in it
}

func newKeys(pool string) keys {
	p := "matchd:{" + pool + "}:"
	return keys{
		prefix:  p,
		queue:   p + "queue",
		seq:     p + "seq",
		tickets: p + "tickets",
		owners:  p + "owners",
		leases:  p + "leases",
		rooms:   p + "rooms",
		wake:    p + "wake",
		buckets: p + "buckets",
	}
}

func (k keys) assign(player string) string  { return k.prefix + "assign:" + player }
func (k keys) room(matchID string) string   { return k.prefix + "room:" + matchID }
func (k keys) owned(instance string) string { return k.prefix + "owned:" + instance }

// matched names the tickets a match was made from (player -> ticket
// JSON), kept as long as the room, for Requeue.
func (k keys) matched(matchID string) string { return k.prefix + "mt:" + matchID }
