package redis

// keys names the Redis keys of one matching pool. Every key carries the
// pool's hash tag {pool}, so all of a pool's keys live in one Redis
// Cluster slot and its scripts can touch them atomically; different pools
// can live on different nodes. docs/redis.md describes the layout.
type keys struct {
	prefix  string // "matchd:{pool}:"
	queue   string // ZSET player -> seq
	seq     string // STRING ticket counter
	tickets string // HASH player -> ticket JSON
	owners  string // HASH player -> owning instance
	leases  string // ZSET instance -> lease expiry (ms)
	rooms   string // ZSET room key -> expiry (ms): live rooms
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
	}
}

func (k keys) assign(player string) string  { return k.prefix + "assign:" + player }
func (k keys) room(matchID string) string   { return k.prefix + "room:" + matchID }
func (k keys) owned(instance string) string { return k.prefix + "owned:" + instance }
