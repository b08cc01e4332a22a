package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// prefMix is a parsed -prefs spec: for each preference field, the values
// a player draws from and their weights. The fields are those the
// matching-policy issue puts on join_queue's "preferences"; the server
// rejects preferences until that lands, which is why -prefs is off by
// default.
type prefMix struct {
	fields []prefField
}

// prefField is one field of the mix, e.g. difficulty=easy:0.3,hard:0.7.
type prefField struct {
	name   string
	values []string  // "any" leaves the field out
	cum    []float64 // cumulative weights, for drawing
}

// prefKinds says how each known field is sent: topics as a list of one,
// duration as a number, the rest as strings. Unknown fields are refused so
// that a typo does not silently measure a different mix.
var prefKinds = map[string]string{
	"difficulty": "string",
	"topics":     "list",
	"duration":   "int",
	"language":   "string",
	"region":     "string",
}

// parsePrefs parses a spec such as
//
//	difficulty=easy:0.3,medium:0.5,hard:0.2;topics=algorithms:0.5,system_design:0.5
//
// Fields are separated by ";", values by ","; a value without ":weight"
// weighs 1, and weights need not sum to 1. The value "any" omits the field.
func parsePrefs(spec string) (*prefMix, error) {
	m := &prefMix{}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, list, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || list == "" {
			return nil, fmt.Errorf("%q: want field=value:weight,…", part)
		}
		kind, known := prefKinds[name]
		if !known {
			return nil, fmt.Errorf("unknown preference field %q (known: difficulty, topics, duration, language, region)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("field %q given twice", name)
		}
		seen[name] = true
		f := prefField{name: name}
		total := 0.0
		for item := range strings.SplitSeq(list, ",") {
			v, w, hasWeight := strings.Cut(strings.TrimSpace(item), ":")
			if v == "" {
				return nil, fmt.Errorf("%s: empty value in %q", name, list)
			}
			weight := 1.0
			if hasWeight {
				var err error
				weight, err = strconv.ParseFloat(w, 64)
				if err != nil || weight < 0 || math.IsInf(weight, 0) || math.IsNaN(weight) {
					return nil, fmt.Errorf("%s=%s: weight %q is not a non-negative number", name, v, w)
				}
			}
			if kind == "int" && v != "any" {
				if _, err := strconv.Atoi(v); err != nil {
					return nil, fmt.Errorf("%s: %q is not a whole number", name, v)
				}
			}
			total += weight
			f.values = append(f.values, v)
			f.cum = append(f.cum, total)
		}
		if total <= 0 {
			return nil, fmt.Errorf("%s: the weights sum to 0", name)
		}
		m.fields = append(m.fields, f)
	}
	if len(m.fields) == 0 {
		return nil, fmt.Errorf("%q names no field", spec)
	}
	return m, nil
}

// draw picks one value per field; the result is the "preferences" object,
// or nil when every field drew "any".
func (m *prefMix) draw(rng *rand.Rand) map[string]any {
	var out map[string]any
	for _, f := range m.fields {
		x := rng.Float64() * f.cum[len(f.cum)-1]
		i := 0
		for i < len(f.cum)-1 && x >= f.cum[i] {
			i++
		}
		v := f.values[i]
		if v == "any" {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		switch prefKinds[f.name] {
		case "list":
			out[f.name] = []string{v}
		case "int":
			n, _ := strconv.Atoi(v) // checked by parsePrefs
			out[f.name] = n
		default:
			out[f.name] = v
		}
	}
	return out
}
