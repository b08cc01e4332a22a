package questions_test

import (
	"testing"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/questions"
)

func TestShippedBank(t *testing.T) {
	bank, err := questions.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if bank.Len() < 40 {
		t.Errorf("bank has %d questions, want at least 40", bank.Len())
	}
	// Every topic offers every difficulty, so any agreed difficulty can
	// be served from any shared topic.
	have := map[string]int{}
	for _, q := range bank.Questions() {
		have[q.Topic+"/"+q.Difficulty]++
	}
	for _, topic := range bank.Topics() {
		for _, d := range matchd.Difficulties {
			if have[topic+"/"+d] == 0 {
				t.Errorf("no %s question on %s", d, topic)
			}
		}
	}
	for _, want := range []string{"behavioral", "algorithms", "data_structures", "system_design"} {
		if have[want+"/easy"] == 0 {
			t.Errorf("topic %s missing", want)
		}
	}
	t.Logf("%d questions on %v", bank.Len(), bank.Topics())
}
