package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// TestPolicyAcrossInstances: two instances share one Redis and one
// policy. Preferences keep apart players who do not fit, whichever
// instance they joined through; a rating gap too wide at first is bridged
// by a sweep once the tolerance has widened with real waiting time; and
// queue-status answers per pool on either instance.
func TestPolicyAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	// The default rules, but the rating tolerance widens every 200 ms so
	// the test need not wait seconds.
	policy := matchd.DefaultPolicy()
	policy.Rating.Every = 200 * time.Millisecond
	withPolicy := func(c *redis.Config) { c.Policy = &policy }
	a, b := startInstance(t, "a", addrs, withPolicy), startInstance(t, "b", addrs, withPolicy)

	join := func(p *player, prefs map[string]any) {
		t.Helper()
		data, _ := json.Marshal(map[string]any{"type": "join_queue", "preferences": prefs})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.conn().Write(ctx, websocket.MessageText, data); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob, carol := ratedPlayer(t, "alice", 1500), ratedPlayer(t, "bob", 1500), ratedPlayer(t, "carol", 1800)
	alice.connect(a)
	bob.connect(b)
	carol.connect(b)

	join(alice, map[string]any{"difficulty": "hard", "topics": []string{"databases", "system_design"}})
	alice.expect("queued")
	join(bob, map[string]any{"difficulty": "easy"})
	bob.expect("queued")
	for _, in := range []*instance{a, b} {
		if n := poolSize(t, in, "?difficulty=easy"); n != 1 {
			t.Errorf("queue-status?difficulty=easy on %s = %d, want 1 (bob)", in.name, n)
		}
		if n := poolSize(t, in, ""); n != 2 {
			t.Errorf("queue-status on %s = %d, want 2", in.name, n)
		}
	}

	// Carol fits alice's difficulty and topics, but is 300 points above
	// her: too far at first (tolerance 100), close enough once the longer
	// wait has widened it to 300 — found by a sweep, not by a join.
	join(carol, map[string]any{"difficulty": "hard", "topics": []string{"system_design"}})
	if q := carol.expect("queued"); q["queue_size"] != 3.0 {
		t.Fatalf("carol queued = %v, want queue_size 3: not matched at once", q)
	}
	mc, ma := carol.expect("match_found"), alice.expect("match_found")
	room := ma["room"].(map[string]any)
	if ma["match_id"] != mc["match_id"] || ma["partner_id"] != "carol" {
		t.Fatalf("alice %v, carol %v: want one match of the two", ma, mc)
	}
	if room["difficulty"] != "hard" || room["topic"] != "system_design" {
		t.Errorf("room question %v/%v, want hard system_design (the shared topic)", room["topic"], room["difficulty"])
	}
	bob.quiet() // bob, who asked for easy, still waits
	if n := queueSize(t, a.client); n != 1 {
		t.Errorf("queue size %d, want 1 (bob)", n)
	}
}

func ratedPlayer(t *testing.T, id string, rating float64) *player {
	t.Helper()
	token, err := auth.New([]byte(secret), nil).Issue(auth.Claims{UserID: id, Rating: &rating}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &player{t: t, id: id, token: token}
}

func poolSize(t *testing.T, in *instance, query string) int {
	t.Helper()
	resp, err := http.Get(in.url + "/api/matchmaking/queue-status" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		QueueSize int `json:"queue_size"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("queue-status%s on %s: status %d", query, in.name, resp.StatusCode)
	}
	return body.QueueSize
}
