package matchd

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func testSession(readyTimeout time.Duration) Session {
	room := Room{MatchID: "m-0123456789abcdef", Player1: "alice", Player2: "bob", QuestionID: "q", DurationMinutes: 15}
	return NewSession(room, SessionConfig{ReadyTimeout: readyTimeout, RoomTTL: time.Hour}, t0)
}

func TestSessionApply(t *testing.T) {
	type step struct {
		at    time.Duration // after t0
		step  Step
		event []string // types of the events, in order
	}
	tests := []struct {
		name       string
		ready      time.Duration
		steps      []step
		status     string
		reason, by string
	}{
		{"both_ready", 30 * time.Second, []step{
			{1 * time.Second, Step{Kind: StepReady, Player: "alice"}, []string{RoomState}},
			{2 * time.Second, Step{Kind: StepReady, Player: "alice"}, nil},
			{3 * time.Second, Step{Kind: StepReady, Player: "bob"}, []string{RoomStarted, RoomStarted}},
		}, StatusActive, "", ""},
		{"one_no_show", 30 * time.Second, []step{
			{1 * time.Second, Step{Kind: StepReady, Player: "bob"}, []string{RoomState}},
			{29 * time.Second, Step{Kind: StepTick}, nil},
			{30 * time.Second, Step{Kind: StepTick}, []string{RoomRequeued, RoomCancelled}},
		}, StatusAbandoned, EndNoShow, "alice"},
		{"neither_ready", 30 * time.Second, []step{
			{30 * time.Second, Step{Kind: StepTick}, []string{RoomCancelled, RoomCancelled}},
		}, StatusAbandoned, EndNotReady, ""},
		{"late_ready_is_the_tick", 30 * time.Second, []step{
			{1 * time.Second, Step{Kind: StepReady, Player: "bob"}, []string{RoomState}},
			{31 * time.Second, Step{Kind: StepReady, Player: "alice"}, []string{RoomRequeued, RoomCancelled}},
		}, StatusAbandoned, EndNoShow, "alice"},
		{"leave_while_waiting", 30 * time.Second, []step{
			{1 * time.Second, Step{Kind: StepLeave, Player: "alice"}, []string{RoomPartnerLeft}},
		}, StatusAbandoned, EndLeft, "alice"},
		{"warnings_then_time_up", 0, []step{
			{10 * time.Minute, Step{Kind: StepTick}, []string{RoomTimeWarning, RoomTimeWarning}},
			{10 * time.Minute, Step{Kind: StepTick}, nil},
			{14 * time.Minute, Step{Kind: StepTick}, []string{RoomTimeWarning, RoomTimeWarning}},
			{15 * time.Minute, Step{Kind: StepTick}, []string{RoomTimeUp, RoomTimeUp}},
			{16 * time.Minute, Step{Kind: StepTick}, nil},
		}, StatusCompleted, EndTimeUp, ""},
		{"late_tick_sends_one_warning", 0, []step{
			{14*time.Minute + 30*time.Second, Step{Kind: StepTick}, []string{RoomTimeWarning, RoomTimeWarning}},
			{14*time.Minute + 40*time.Second, Step{Kind: StepTick}, nil},
		}, StatusActive, "", ""},
		{"leave_mid_session", 0, []step{
			{5 * time.Minute, Step{Kind: StepLeave, Player: "bob"}, []string{RoomPartnerLeft}},
			{6 * time.Minute, Step{Kind: StepLeave, Player: "alice"}, nil},
		}, StatusCompleted, EndLeft, "bob"},
		{"expiry", 30 * time.Second, []step{
			{time.Hour, Step{Kind: StepTick}, []string{RoomCancelled, RoomCancelled}},
		}, StatusAbandoned, EndExpired, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession(tt.ready)
			for i, st := range tt.steps {
				next, events, changed, err := s.Apply(st.step, t0.Add(st.at))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var types []string
				for _, ev := range events {
					types = append(types, ev.Type)
				}
				if len(types) != len(st.event) {
					t.Fatalf("step %d (%s at %v): events %v, want %v", i, st.step.Kind, st.at, types, st.event)
				}
				for j := range types {
					if types[j] != st.event[j] {
						t.Fatalf("step %d: events %v, want %v", i, types, st.event)
					}
				}
				if changed != (next.Version == s.Version+1) || !changed && next.Version != s.Version {
					t.Fatalf("step %d: changed %v, version %d -> %d", i, changed, s.Version, next.Version)
				}
				s = next
			}
			if s.Status != tt.status || s.Reason != tt.reason || s.By != tt.by {
				t.Errorf("end state %s/%s/%s, want %s/%s/%s", s.Status, s.Reason, s.By, tt.status, tt.reason, tt.by)
			}
		})
	}
}

func TestSessionDue(t *testing.T) {
	s := testSession(30 * time.Second)
	if got := s.Due(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("waiting: due %v, want the end of the ready window", got)
	}
	s = testSession(0)
	if got := s.Due(); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("active: due %v, want the 5-minute warning", got)
	}
	s.Warned = 2
	if got := s.Due(); !got.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("warned: due %v, want the end", got)
	}
	s, _, _, _ = s.Apply(Step{Kind: StepTick}, t0.Add(15*time.Minute))
	if got := s.Due(); !got.Equal(t0.Add(15*time.Minute + SettleRetry)) {
		t.Errorf("ended, unsettled: due %v, want SettleRetry after the end", got)
	}
	s.Settled = true
	if got := s.Due(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("settled: due %v, want the expiry", got)
	}
}

func TestSessionRequeueOwner(t *testing.T) {
	s := testSession(30 * time.Second)
	s, _, _, _ = s.Apply(Step{Kind: StepReady, Player: "bob", Owner: "gw2"}, t0)
	_, events, _, _ := s.Apply(Step{Kind: StepTick}, t0.Add(time.Minute))
	if events[0].To != "bob" || events[0].Owner != "gw2" || events[0].Reason != "partner_no_show" {
		t.Errorf("requeued event = %+v, want to bob, owner gw2, reason partner_no_show", events[0])
	}
	if events[1].To != "alice" || events[1].Reason != EndNotReady {
		t.Errorf("cancel event = %+v, want to alice, reason not_ready", events[1])
	}
}

func TestElo(t *testing.T) {
	tests := []struct {
		name            string
		rating, partner float64
		stars           int
		want            float64
	}{
		{"equals_three_stars_stay", 1500, 1500, 3, 1500},
		{"equals_five_stars", 1500, 1500, 5, 1516},
		{"equals_one_star", 1500, 1500, 1, 1484},
		{"stronger_partner_five_stars", 1500, 1900, 5, 1500 + 32*(1-1/(1+math.Pow(10, 1)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Elo(tt.rating, tt.partner, tt.stars); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Elo(%v, %v, %d) = %v, want %v", tt.rating, tt.partner, tt.stars, got, tt.want)
			}
		})
	}
}

func TestValidateFeedback(t *testing.T) {
	long := make([]rune, MaxNotesLength+1)
	for i := range long {
		long[i] = 'é'
	}
	tests := []struct {
		name  string
		stars int
		notes string
		ok    bool
	}{
		{"one", 1, "", true},
		{"five_with_notes", 5, "great", true},
		{"zero", 0, "", false},
		{"six", 6, "", false},
		{"notes_at_limit", 3, string(long[:MaxNotesLength]), true},
		{"notes_too_long", 3, string(long), false},
		{"invalid_utf8", 3, "\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFeedback(tt.stars, tt.notes)
			if (err == nil) != tt.ok || err != nil && ErrorCode(err) != EInvalid {
				t.Errorf("ValidateFeedback(%d, %d chars) = %v, want ok=%v", tt.stars, len(tt.notes), err, tt.ok)
			}
		})
	}
}
