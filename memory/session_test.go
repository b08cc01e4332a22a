package memory_test

import (
	"testing"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
)

func TestSessionStoreConformance(t *testing.T) {
	matchdtest.RunSessionStore(t, func(t *testing.T) func() matchd.SessionStore {
		s := memory.NewSessions(0)
		t.Cleanup(func() { s.Close() })
		return func() matchd.SessionStore { return s }
	})
}
