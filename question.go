package matchd

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
)

// The difficulties and suggested durations (minutes) a question may have.
var (
	Difficulties = []string{"easy", "medium", "hard"}
	Durations    = []int{15, 30, 45, 60}
)

// A Question is one interview question of the bank.
type Question struct {
	ID              string `json:"id"`
	Topic           string `json:"topic"`
	Difficulty      string `json:"difficulty"`
	DurationMinutes int    `json:"duration_minutes"`
	Text            string `json:"text"`
}

// QuestionBank is the validated, read-only set of interview questions.
type QuestionBank struct {
	questions []Question
	topics    []string
}

var questionIDPattern = regexp.MustCompile(`^[a-z0-9-]{3,40}$`)

// ParseQuestionBank decodes and validates a bank in the JSON form
// {"questions":[{id,topic,difficulty,duration_minutes,text},…]}. Every
// problem is an error naming the question, so a bad data file fails at
// start-up rather than in a room.
func ParseQuestionBank(data []byte) (*QuestionBank, error) {
	var doc struct {
		Questions []Question `json:"questions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("question bank: %w", err)
	}
	if len(doc.Questions) == 0 {
		return nil, fmt.Errorf("question bank: no questions")
	}
	bank := &QuestionBank{questions: doc.Questions}
	seen := make(map[string]bool)
	for i, q := range doc.Questions {
		switch {
		case !questionIDPattern.MatchString(q.ID):
			return nil, fmt.Errorf("question bank: question %d: bad id %q", i, q.ID)
		case seen[q.ID]:
			return nil, fmt.Errorf("question bank: duplicate id %q", q.ID)
		case !topicPattern.MatchString(q.Topic):
			return nil, fmt.Errorf("question bank: %s: bad topic %q", q.ID, q.Topic)
		case !slices.Contains(Difficulties, q.Difficulty):
			return nil, fmt.Errorf("question bank: %s: bad difficulty %q", q.ID, q.Difficulty)
		case !slices.Contains(Durations, q.DurationMinutes):
			return nil, fmt.Errorf("question bank: %s: duration_minutes %d is not one of %v", q.ID, q.DurationMinutes, Durations)
		case q.Text == "" || len(q.Text) > 1000:
			return nil, fmt.Errorf("question bank: %s: text must be 1 to 1000 bytes", q.ID)
		}
		seen[q.ID] = true
		if !slices.Contains(bank.topics, q.Topic) {
			bank.topics = append(bank.topics, q.Topic)
		}
	}
	slices.Sort(bank.topics)
	return bank, nil
}

// topicPattern is the shape of a topic name: lower-case words joined by
// underscores, such as "system_design".
var topicPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,31}$`)

// Len returns the number of questions.
func (b *QuestionBank) Len() int { return len(b.questions) }

// Topics returns the bank's topics, sorted.
func (b *QuestionBank) Topics() []string { return slices.Clone(b.topics) }

// Questions returns a copy of all questions.
func (b *QuestionBank) Questions() []Question { return slices.Clone(b.questions) }

// Random returns a question drawn uniformly from the bank.
func (b *QuestionBank) Random() Question { return b.questions[rand.IntN(len(b.questions))] }

// Pick returns a question for a pair: drawn at random from those of
// difficulty (any when empty) on one of topics (any when empty) that
// avoid does not reject. When none is left it relaxes, in order, avoid,
// then topics, then difficulty, so a pair always gets a question.
func (b *QuestionBank) Pick(difficulty string, topics []string, avoid func(id string) bool) Question {
	fits := func(q *Question, useAvoid, useTopics bool) bool {
		return (difficulty == "" || q.Difficulty == difficulty) &&
			(!useTopics || len(topics) == 0 || slices.Contains(topics, q.Topic)) &&
			(!useAvoid || avoid == nil || !avoid(q.ID))
	}
	for _, step := range [][2]bool{{true, true}, {false, true}, {false, false}} {
		// Reservoir sampling: one pass, no allocation.
		var pick *Question
		n := 0
		for i := range b.questions {
			if q := &b.questions[i]; fits(q, step[0], step[1]) {
				n++
				if rand.IntN(n) == 0 {
					pick = q
				}
			}
		}
		if pick != nil {
			return *pick
		}
	}
	return b.Random() // no question of that difficulty at all
}
