package web

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
)

// SessionCookie is the cookie that carries a session token.
const SessionCookie = "matchd_session"

// maxBodyBytes caps every REST request body.
const maxBodyBytes = 4 << 10

// authenticate returns the claims of the request's token, taken from the
// Authorization header, the session cookie, or (where allowQuery is set,
// i.e. on /ws, which browsers cannot give headers) the token parameter.
func (s *Server) authenticate(r *http.Request, allowQuery bool) (auth.Claims, error) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return auth.Claims{}, matchd.Errorf(matchd.EUnauthorized, "Authorization must be \"Bearer <token>\"")
		}
		token = strings.TrimSpace(t)
	} else if q := r.URL.Query().Get("token"); allowQuery && q != "" {
		token = q
	} else if c, err := r.Cookie(SessionCookie); err == nil {
		token = c.Value
	}
	if token == "" {
		return auth.Claims{}, matchd.Errorf(matchd.EUnauthorized, "a session token is required")
	}
	return s.cfg.Auth.Verify(token)
}

// handleDevLogin issues a token for any well-formed user id, so matchd can
// be tried and tested without an identity provider.
func (s *Server) handleDevLogin(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.DevLogin {
		s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "dev login is disabled"))
		return
	}
	var body struct {
		UserID   *string  `json:"user_id"`
		Rating   *float64 `json:"rating"`
		Priority *int     `json:"priority"`
	}
	if err := decodeBody(w, r, maxBodyBytes, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.UserID == nil || !matchd.ValidPlayerID(*body.UserID) {
		s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "user_id must be 1 to 64 characters of A-Z a-z 0-9 _ . -"))
		return
	}
	if body.Rating != nil && (math.IsNaN(*body.Rating) || *body.Rating < 0 || *body.Rating > 10000) {
		s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "rating must be a number from 0 to 10000"))
		return
	}
	c := auth.Claims{UserID: *body.UserID, Rating: body.Rating}
	if body.Priority != nil {
		if *body.Priority < -1000 || *body.Priority > 1000 {
			s.writeError(w, r, matchd.Errorf(matchd.EInvalid, "priority must be an integer from -1000 to 1000"))
			return
		}
		c.Priority = *body.Priority
	}
	token, err := s.cfg.Auth.Issue(c, s.cfg.TokenTTL)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(s.cfg.TokenTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	writeJSON(w, http.StatusOK, map[string]string{"user_id": c.UserID, "token": token})
}

type queueStatus struct {
	QueueSize            int    `json:"queue_size"`
	EstimatedWaitSeconds int    `json:"estimated_wait_seconds"`
	EstimatedWaitText    string `json:"estimated_wait_text"`
}

// handleQueueStatus answers for the whole queue, or, when the request
// names preferences as query parameters (difficulty, topics — repeated or
// comma-separated —, duration, language, region), for the pool of a
// player with those preferences.
func (s *Server) handleQueueStatus(w http.ResponseWriter, r *http.Request) {
	prefs, any, err := s.queryPreferences(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var n int
	if any {
		n, err = s.mm.PoolSize(r.Context(), prefs)
	} else {
		n, err = s.mm.QueueSize(r.Context())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wait := s.estimator.Estimate(n, false).Round(time.Second)
	writeJSON(w, http.StatusOK, queueStatus{
		QueueSize:            n,
		EstimatedWaitSeconds: seconds(wait),
		EstimatedWaitText:    matchd.WaitText(wait),
	})
}

// queryPreferences reads preferences from query parameters, validated as
// join_queue's are; any reports whether the query named any.
func (s *Server) queryPreferences(q url.Values) (p matchd.Preferences, any bool, err error) {
	for name, values := range q {
		if len(values) > 1 && name != "topics" {
			return p, false, matchd.Errorf(matchd.EInvalid, "query parameter %q given more than once", truncate(name, 40))
		}
		v := values[0]
		switch name {
		case "difficulty":
			p.Difficulty = v
		case "topics":
			for _, v := range values {
				for _, t := range strings.Split(v, ",") {
					if t != "" {
						p.Topics = append(p.Topics, t)
					}
				}
			}
		case "duration":
			d, err := strconv.Atoi(v)
			if err != nil {
				return p, false, matchd.Errorf(matchd.EInvalid, "duration must be a whole number of minutes: one of %v", matchd.Durations)
			}
			p.Duration = d
		case "language":
			p.Language = v
		case "region":
			p.Region = v
		default:
			return p, false, matchd.Errorf(matchd.EInvalid, "unknown query parameter %q: queue-status takes difficulty, topics, duration, language and region", truncate(name, 40))
		}
	}
	if err := p.Validate(s.cfg.Topics); err != nil {
		// Validate names join_queue's fields ("preferences.difficulty");
		// here they are query parameters ("difficulty").
		return p, false, matchd.Errorf(matchd.EInvalid, "%s", strings.ReplaceAll(matchd.ErrorMessage(err), "preferences.", ""))
	}
	return p, len(q) > 0, nil
}

func seconds(d time.Duration) int { return int(math.Round(d.Seconds())) }

// handleRoom returns a room to one of its two players.
func (s *Server) handleRoom(w http.ResponseWriter, r *http.Request) {
	claims, err := s.authenticate(r, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	room, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if !room.Has(claims.UserID) {
		s.writeError(w, r, matchd.Errorf(matchd.EForbidden, "you are not a player of this match"))
		return
	}
	writeJSON(w, http.StatusOK, s.shownRoom(r.Context(), &room))
}

// handleLive answers 200 while the process serves requests: the liveness
// probe. It does not depend on the backend, so a Redis outage does not get
// every instance restarted (and every socket dropped); /healthz, which the
// original design and the contract define as a backend check, does.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// handleReady answers whether this instance should get traffic: its
// backend answers and it is not draining. A load balancer takes a draining
// instance out before its sockets are told to reconnect.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.mm.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": matchd.ErrorMessage(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// lookupRoom returns the room named by the request's {match_id}, or
// answers the error and returns false.
func (s *Server) lookupRoom(w http.ResponseWriter, r *http.Request) (matchd.Room, bool) {
	id := r.PathValue("match_id")
	if !matchd.ValidMatchID(id) {
		s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "no such match"))
		return matchd.Room{}, false
	}
	room, err := s.mm.Room(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return matchd.Room{}, false
	}
	return room, true
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	n, err := s.mm.QueueSize(ctx)
	if err == nil {
		err = s.mm.Ping(ctx)
	}
	if err != nil {
		s.log.Warn("health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": matchd.ErrorMessage(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "queue_size": n})
}
