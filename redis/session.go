package redis

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
)

// The session store's scripts; each file's header gives its keys,
// arguments and why it is safe.
var (
	//go:embed session_open.lua
	sessionOpenSrc string
	//go:embed session_commit.lua
	sessionCommitSrc string
	//go:embed session_due.lua
	sessionDueSrc string
	//go:embed feedback.lua
	feedbackSrc string

	sessionOpenScript   = goredis.NewScript(sessionOpenSrc)
	sessionCommitScript = goredis.NewScript(sessionCommitSrc)
	sessionDueScript    = goredis.NewScript(sessionDueSrc)
	feedbackScript      = goredis.NewScript(feedbackSrc)
)

func init() {
	// Name the session scripts in command metrics, like the others.
	for name, src := range map[string]string{
		"session_open.lua": sessionOpenSrc, "session_commit.lua": sessionCommitSrc,
		"session_due.lua": sessionDueSrc, "feedback.lua": feedbackSrc,
	} {
		scriptNames[goredis.NewScript(src).Hash()] = name
		scriptNames[src] = name
	}
}

// sessionKeys names the session store's keys of one pool. They share the
// pool's hash tag with its queue and rooms (see keys), so a session's
// scripts run in one slot of a Redis Cluster.
type sessionKeys struct {
	prefix  string // "matchd:{pool}:"
	due     string // ZSET match id -> due time (ms)
	ratings string // HASH player -> rating
}

func newSessionKeys(pool string) sessionKeys {
	p := "matchd:{" + pool + "}:"
	return sessionKeys{prefix: p, due: p + "due", ratings: p + "ratings"}
}

func (k sessionKeys) session(matchID string) string  { return k.prefix + "session:" + matchID }
func (k sessionKeys) history(player string) string   { return k.prefix + "history:" + player }
func (k sessionKeys) cooldown(player string) string  { return k.prefix + "cooldown:" + player }
func (k sessionKeys) feedback(matchID string) string { return k.prefix + "feedback:" + matchID }

// SessionsConfig configures a Sessions store. Client is required.
type SessionsConfig struct {
	Client goredis.UniversalClient
	Pool   string // default "default"; the pool of the Backend it serves
	// Channel carries room events; default "match_channel:rooms". All
	// instances must share it.
	Channel string
	Clock   matchd.Clock // for key TTLs; default the system clock
	Logger  *slog.Logger
	// EventBuffer is each subscriber's channel capacity; default 1024.
	EventBuffer int
	// HistoryTTL is how long a player's history and a match's feedback
	// are kept after their last change; default 30 days.
	HistoryTTL time.Duration
}

// Sessions is the Redis matchd.SessionStore: sessions, their timers,
// ratings, feedback and histories in Redis, shared by every instance;
// room events on pub/sub. Every multi-key change is one Lua script.
type Sessions struct {
	cfg SessionsConfig
	c   goredis.UniversalClient
	k   sessionKeys
}

var _ matchd.SessionStore = (*Sessions)(nil)

// NewSessions returns a Sessions store. It starts nothing; closing its
// client ends its subscriptions.
func NewSessions(cfg SessionsConfig) *Sessions {
	if cfg.Pool == "" {
		cfg.Pool = "default"
	}
	if cfg.Channel == "" {
		cfg.Channel = "match_channel:rooms"
	}
	if cfg.Clock == nil {
		cfg.Clock = matchd.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = 30 * 24 * time.Hour
	}
	return &Sessions{cfg: cfg, c: cfg.Client, k: newSessionKeys(cfg.Pool)}
}

// historyCap is how many past sessions a player's history keeps.
const historyCap = 50

// sessionGrace keeps a session key a while past its expiry, so that the
// cleanup (a tick at ExpiresAt) finds it; the TTL is only a backstop.
const sessionGrace = time.Hour

func (s *Sessions) keyTTL(sess matchd.Session) int64 {
	return (max(sess.ExpiresAt.Sub(s.cfg.Clock.Now()), 0) + sessionGrace).Milliseconds()
}

// Open implements matchd.SessionStore.
func (s *Sessions) Open(ctx context.Context, sess matchd.Session) (matchd.Session, error) {
	data, err := json.Marshal(sess)
	if err != nil {
		return matchd.Session{}, err
	}
	raw, err := sessionOpenScript.Run(ctx, s.c, []string{s.k.session(sess.MatchID), s.k.due},
		data, sess.Version, sess.Due().UnixMilli(), s.keyTTL(sess), sess.MatchID).Text()
	if err != nil {
		return matchd.Session{}, unavailable(err)
	}
	return decodeSession(raw)
}

// Session implements matchd.SessionStore.
func (s *Sessions) Session(ctx context.Context, matchID string) (matchd.Session, error) {
	raw, err := s.c.HGet(ctx, s.k.session(matchID), "s").Result()
	if errors.Is(err, goredis.Nil) {
		return matchd.Session{}, matchd.Errorf(matchd.ENotFound, "no such session")
	}
	if err != nil {
		return matchd.Session{}, unavailable(err)
	}
	return decodeSession(raw)
}

func decodeSession(raw string) (matchd.Session, error) {
	var sess matchd.Session
	if err := json.Unmarshal([]byte(raw), &sess); err != nil {
		return matchd.Session{}, fmt.Errorf("stored session: %w", err)
	}
	return sess, nil
}

// Commit implements matchd.SessionStore.
func (s *Sessions) Commit(ctx context.Context, c matchd.Commit) (bool, error) {
	sess := c.Session
	data, err := json.Marshal(sess)
	if err != nil {
		return false, err
	}
	del := "0"
	if c.Delete {
		del = "1"
	}
	keys := []string{s.k.session(sess.MatchID), s.k.due, s.k.history(sess.Players[0]), s.k.history(sess.Players[1]), s.k.cooldown(sess.Players[0])}
	entries := [2]string{}
	for _, h := range c.History {
		b, err := json.Marshal(h)
		if err != nil {
			return false, err
		}
		entries[sess.Index(sess.Partner(h.PartnerID))] = string(b)
	}
	cooldownUntil, cooldownTTL := "", int64(0)
	if c.Cooldown.Player != "" {
		keys[4] = s.k.cooldown(c.Cooldown.Player)
		cooldownUntil = strconv.FormatInt(c.Cooldown.Until.UnixMilli(), 10)
		cooldownTTL = max(c.Cooldown.Until.Sub(s.cfg.Clock.Now()).Milliseconds(), 1)
	}
	args := []any{sess.MatchID, sess.Version - 1, sess.Version, data, sess.Due().UnixMilli(), s.keyTTL(sess), del,
		s.cfg.Channel, entries[0], entries[1], historyCap, s.cfg.HistoryTTL.Milliseconds(), cooldownUntil, cooldownTTL}
	for _, ev := range c.Events {
		b, err := json.Marshal(ev)
		if err != nil {
			return false, err
		}
		args = append(args, b)
	}
	n, err := sessionCommitScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// Due implements matchd.SessionStore.
func (s *Sessions) Due(ctx context.Context, now time.Time, limit int, claim time.Duration) ([]string, error) {
	ids, err := sessionDueScript.Run(ctx, s.c, []string{s.k.due},
		now.UnixMilli(), limit, now.Add(claim).UnixMilli(), s.k.prefix).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	return ids, nil
}

// Publish implements matchd.SessionStore.
func (s *Sessions) Publish(ctx context.Context, ev matchd.RoomEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return unavailable(s.c.Publish(ctx, s.cfg.Channel, b).Err())
}

// Subscribe implements matchd.SessionStore. As with Backend.Subscribe, the
// subscription is confirmed before it returns, and it ends (the channel
// closes) when go-redis had to resubscribe, so that the owner resyncs.
func (s *Sessions) Subscribe(ctx context.Context) (<-chan matchd.RoomEvent, error) {
	ctx, cancel := context.WithCancel(ctx)
	ps := s.c.Subscribe(ctx, s.cfg.Channel)
	if _, err := ps.Receive(ctx); err != nil {
		cancel()
		ps.Close()
		return nil, unavailable(err)
	}
	ch := make(chan matchd.RoomEvent, s.cfg.EventBuffer)
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	go func() {
		defer func() {
			stop()
			cancel()
			ps.Close()
			close(ch)
		}()
		relay(ctx, ps, ch, s.cfg.Logger, "room event")
	}()
	return ch, nil
}

// History implements matchd.SessionStore.
func (s *Sessions) History(ctx context.Context, player string, limit int) ([]matchd.HistoryEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	raws, err := s.c.LRange(ctx, s.k.history(player), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]matchd.HistoryEntry, 0, len(raws))
	for _, raw := range raws {
		var h matchd.HistoryEntry
		if err := json.Unmarshal([]byte(raw), &h); err != nil {
			return nil, fmt.Errorf("stored history entry: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

// Cooldown implements matchd.SessionStore.
func (s *Sessions) Cooldown(ctx context.Context, player string, now time.Time) (time.Duration, error) {
	until, err := s.c.Get(ctx, s.k.cooldown(player)).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return max(time.UnixMilli(until).Sub(now), 0), nil
}

// Rating implements matchd.Ratings.
func (s *Sessions) Rating(ctx context.Context, player string) (float64, bool, error) {
	raw, err := s.c.HGet(ctx, s.k.ratings, player).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, unavailable(err)
	}
	r, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, false, fmt.Errorf("stored rating of %s: %w", player, err)
	}
	return r, true, nil
}

// formatRating writes a rating so that parsing it gives it back exactly:
// feedback.lua compares ratings as strings.
func formatRating(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

// AddFeedback implements matchd.SessionStore.
func (s *Sessions) AddFeedback(ctx context.Context, fb matchd.Feedback, old *float64, rating float64) (bool, error) {
	data, err := json.Marshal(fb)
	if err != nil {
		return false, err
	}
	expected := ""
	if old != nil {
		expected = formatRating(*old)
	}
	n, err := feedbackScript.Run(ctx, s.c, []string{s.k.feedback(fb.MatchID), s.k.ratings},
		fb.From, data, fb.To, expected, formatRating(rating), s.cfg.HistoryTTL.Milliseconds()).Int()
	switch {
	case err != nil:
		return false, unavailable(err)
	case n < 0:
		return false, matchd.Errorf(matchd.EConflict, "you have already given feedback on this session")
	}
	return n == 1, nil
}

// Feedback implements matchd.SessionStore.
func (s *Sessions) Feedback(ctx context.Context, matchID string) ([]matchd.Feedback, error) {
	m, err := s.c.HGetAll(ctx, s.k.feedback(matchID)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]matchd.Feedback, 0, len(m))
	for _, raw := range m {
		var fb matchd.Feedback
		if err := json.Unmarshal([]byte(raw), &fb); err != nil {
			return nil, fmt.Errorf("stored feedback: %w", err)
		}
		out = append(out, fb)
	}
	slices.SortFunc(out, func(a, b matchd.Feedback) int { return cmp.Compare(a.From, b.From) })
	return out, nil
}
