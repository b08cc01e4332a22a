package memory_test

import (
	"testing"
	"time"

	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
)

// TestModel runs the shared model of the matching policy on the embedded
// backend; a bounded run reads one ticket per rating band.
func TestModel(t *testing.T) {
	matchdtest.RunModel(t, func(_ *testing.T, cfg matchdtest.ModelConfig) matchdtest.ModelBackend {
		perBand := 1
		if cfg.Exact {
			perBand = 1 << 10
		}
		return memory.New(memory.Config{Rooms: cfg.Rooms, Policy: &cfg.Policy, Clock: cfg.Clock, Observer: cfg.Observer,
			SweepEvery: time.Hour, PerBand: perBand})
	})
}
