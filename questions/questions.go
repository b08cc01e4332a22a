// Package questions ships matchd's interview question bank: a data file
// compiled into the binary with go:embed, so the service needs nothing on
// disk.
package questions

import (
	_ "embed"

	"github.com/matchd/matchd"
)

//go:embed questions.json
var data []byte

// Load parses and validates the embedded bank.
func Load() (*matchd.QuestionBank, error) { return matchd.ParseQuestionBank(data) }
