package web

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/matchd/matchd"
)

// The admin API, for operators: list the waiting tickets of a pool, remove
// a ticket, view any room. It answers only to the admin token (constant-
// time compared) and is off (404) when none is configured.
//
//	GET    /api/admin/pools/{pool}/tickets?limit=N
//	DELETE /api/admin/tickets/{player_id}
//	GET    /api/admin/matches/{match_id}

// pool is the one matching pool there is for now.
const pool = "default"

func (s *Server) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/admin/pools/{pool}/tickets", s.admin(s.handleAdminTickets))
	m.HandleFunc("DELETE /api/admin/tickets/{player_id}", s.admin(s.handleAdminRemove))
	m.HandleFunc("GET /api/admin/matches/{match_id}", s.admin(s.handleAdminRoom))
}

// admin wraps an admin handler with the token check.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "no such endpoint: %s %s", r.Method, truncate(r.URL.Path, 100)))
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
			s.writeError(w, r, matchd.Errorf(matchd.EUnauthorized, "the admin API needs the admin token"))
			return
		}
		h(w, r)
	}
}

type adminTicket struct {
	PlayerID      string             `json:"player_id"`
	Seq           uint64             `json:"seq"`
	JoinedAt      time.Time          `json:"joined_at"`
	WaitedSeconds float64            `json:"waited_seconds"`
	Rating        float64            `json:"rating"`
	Priority      int                `json:"priority"`
	Preferences   matchd.Preferences `json:"preferences"`
	Owner         string             `json:"owner,omitempty"`
}

func (s *Server) handleAdminTickets(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("pool") != pool {
		s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "no such pool"))
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "limit must be an integer from 1 to 10000"))
			return
		}
		limit = n
	}
	inspector, ok := s.mm.(matchd.Inspector)
	if !ok {
		s.writeError(w, r, matchd.Errorf(matchd.EUnavailable, "this backend cannot list tickets"))
		return
	}
	size, err := s.mm.QueueSize(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tickets, err := inspector.Waiting(r.Context(), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.cfg.Clock.Now()
	out := make([]adminTicket, len(tickets))
	for i, t := range tickets {
		out[i] = adminTicket{
			PlayerID: t.PlayerID, Seq: t.Seq, JoinedAt: t.JoinedAt.UTC(), WaitedSeconds: t.Waited(now).Seconds(),
			Rating: t.Rating, Priority: t.Priority, Preferences: t.Prefs, Owner: t.Owner,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pool": pool, "queue_size": size, "tickets": out})
}

func (s *Server) handleAdminRemove(w http.ResponseWriter, r *http.Request) {
	player := r.PathValue("player_id")
	if !matchd.ValidPlayerID(player) {
		s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "not a player id"))
		return
	}
	res, err := s.mm.Leave(r.Context(), player)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body := map[string]any{"player_id": player, "removed": res.Removed}
	if res.Room != nil {
		body["match_id"] = res.Room.MatchID // already matched: nothing to remove
	}
	if res.Removed {
		s.cfg.Metrics.Leaves.Inc()
		s.log.Info("admin removed a ticket", "player", player)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleAdminRoom(w http.ResponseWriter, r *http.Request) {
	if room, ok := s.lookupRoom(w, r); ok {
		writeJSON(w, http.StatusOK, room)
	}
}
