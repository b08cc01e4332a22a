package web

import (
	"math"
	"net/http"
	"strconv"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
)

// The REST side of the room lifecycle: feedback after a session and a
// player's history.

func (s *Server) sessionRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/matches/{match_id}/feedback", s.handleFeedback)
	m.HandleFunc("GET /api/players/me/matches", s.handleHistory)
}

// errLifecycleOff answers the lifecycle's endpoints on a server without it.
var errLifecycleOff = matchd.Errorf(matchd.ENotFound, "the room lifecycle is off on this server")

// maxFeedbackBytes caps a feedback body: 1000 characters of notes may take
// 4000 bytes of UTF-8, more than the API's usual 4 KiB.
const maxFeedbackBytes = 8 << 10

// History limits of GET /api/players/me/matches.
const (
	defaultHistory = 20
	maxHistory     = 50
)

type feedbackResponse struct {
	MatchID   string `json:"match_id"`
	PartnerID string `json:"partner_id"`
	Rating    int    `json:"rating"`
	Notes     string `json:"notes"`
}

// sessionCaller authenticates a request to the session endpoints, which
// need the room lifecycle; it has answered the request when ok is false.
func (s *Server) sessionCaller(w http.ResponseWriter, r *http.Request) (claims auth.Claims, ok bool) {
	claims, err := s.authenticate(r, false)
	if err != nil {
		s.writeError(w, r, err)
		return claims, false
	}
	if s.rooms == nil {
		s.writeError(w, r, errLifecycleOff)
		return claims, false
	}
	return claims, true
}

// handleFeedback records a player's rating of their partner: once per
// player and match, by the match's players only, once the session has
// taken place.
func (s *Server) handleFeedback(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.sessionCaller(w, r)
	if !ok {
		return
	}
	id := r.PathValue("match_id")
	if !matchd.ValidMatchID(id) {
		s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "no such match"))
		return
	}
	var body struct {
		Rating *float64 `json:"rating"`
		Notes  string   `json:"notes"`
	}
	if err := decodeBody(w, r, maxFeedbackBytes, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Rating == nil || *body.Rating != math.Trunc(*body.Rating) || *body.Rating < matchd.MinStars || *body.Rating > matchd.MaxStars {
		s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "rating must be an integer from %d to %d", matchd.MinStars, matchd.MaxStars))
		return
	}
	fb, err := s.rooms.lc.Feedback(r.Context(), id, claims.UserID, int(*body.Rating), body.Notes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, feedbackResponse{MatchID: fb.MatchID, PartnerID: fb.To, Rating: fb.Stars, Notes: fb.Notes})
}

// handleHistory lists the caller's recent sessions, newest first.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.sessionCaller(w, r)
	if !ok {
		return
	}
	limit := defaultHistory
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > maxHistory {
			s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "limit must be an integer from 1 to %d", maxHistory))
			return
		}
		limit = n
	}
	h, err := s.rooms.lc.Store().History(r.Context(), claims.UserID, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if h == nil {
		h = []matchd.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"matches": h})
}
