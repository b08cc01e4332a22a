package memory

import (
	"time"

	"github.com/matchd/matchd"
)

// history remembers, for the policy's history window, whom each player met
// and which questions they had: the no-rematch rule reads the first, the
// question choice the second. Entries are dropped in the order they were
// made once older than the window, so memory stays bounded by the matches
// of one window.
type history struct {
	noRematch, noRepeat, window time.Duration

	players map[string]*playerHistory
	log     []historyEntry // in time order, for expiry
	// banned is the index in log of the first match whose no-rematch ban
	// bansEnded has not yet reported ended.
	banned int
}

type playerHistory struct {
	partners  map[string]time.Time // partner -> when last matched
	questions map[string]time.Time // question id -> when last had
}

type historyEntry struct {
	at      time.Time
	players [2]string
}

func newHistory(p matchd.Policy) history {
	return history{noRematch: p.NoRematch, noRepeat: p.NoRepeat, window: p.History(), players: make(map[string]*playerHistory)}
}

// record remembers room's match, made at now.
func (h *history) record(room matchd.Room, now time.Time) {
	if h.window <= 0 {
		return
	}
	for _, p := range room.Players() {
		ph := h.players[p]
		if ph == nil {
			ph = &playerHistory{partners: make(map[string]time.Time), questions: make(map[string]time.Time)}
			h.players[p] = ph
		}
		ph.partners[room.Partner(p)] = now
		ph.questions[room.QuestionID] = now
	}
	h.log = append(h.log, historyEntry{at: now, players: room.Players()})
}

// recentFunc returns the policy's Recent function at now: whether two
// players met within the no-rematch window.
func (h *history) recentFunc(now time.Time) matchd.Recent {
	if h.noRematch <= 0 {
		return nil
	}
	return func(a, b string) bool {
		ph := h.players[a]
		if ph == nil {
			return false
		}
		at, ok := ph.partners[b]
		return ok && now.Sub(at) < h.noRematch
	}
}

// seen returns the questions player had within the no-repeat window.
func (h *history) seen(player string, now time.Time) []string {
	ph := h.players[player]
	if ph == nil || h.noRepeat <= 0 {
		return nil
	}
	var ids []string
	for id, at := range ph.questions {
		if now.Sub(at) < h.noRepeat {
			ids = append(ids, id)
		}
	}
	return ids
}

// bansEnded returns, once each, the players of the matches whose
// no-rematch ban has ended by now: those two may be paired again, and if
// both wait, nothing else would look at them. Call it before expire,
// which forgets matches no sooner than their ban ends.
func (h *history) bansEnded(now time.Time) []string {
	if h.noRematch <= 0 {
		return nil
	}
	var players []string
	for ; h.banned < len(h.log) && now.Sub(h.log[h.banned].at) >= h.noRematch; h.banned++ {
		players = append(players, h.log[h.banned].players[:]...)
	}
	return players
}

// expire forgets what is older than the window.
func (h *history) expire(now time.Time) {
	n := 0
	for ; n < len(h.log) && now.Sub(h.log[n].at) >= h.window; n++ {
		for _, p := range h.log[n].players {
			ph := h.players[p]
			if ph == nil {
				continue
			}
			for k, at := range ph.partners {
				if now.Sub(at) >= h.window {
					delete(ph.partners, k)
				}
			}
			for k, at := range ph.questions {
				if now.Sub(at) >= h.window {
					delete(ph.questions, k)
				}
			}
			if len(ph.partners) == 0 && len(ph.questions) == 0 {
				delete(h.players, p)
			}
		}
	}
	h.log = h.log[n:]
	h.banned = max(h.banned-n, 0)
}
