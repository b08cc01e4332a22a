package main

import (
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// chartData is a spread of samples from 30 µs to 3 s and a queue that
// rises and falls.
func chartData() ([]time.Duration, []queuePoint) {
	var samples []time.Duration
	for d := 30 * time.Microsecond; d < 3*time.Second; d = d * 11 / 10 {
		samples = append(samples, d, d)
	}
	var queue []queuePoint
	for i := range 40 {
		queue = append(queue, queuePoint{At: time.Duration(i) * queueEvery, Size: (i * 7) % 23})
	}
	return samples, queue
}

func TestChartSVG(t *testing.T) {
	for _, tt := range []struct {
		name    string
		samples []time.Duration
		queue   []queuePoint
	}{
		{"with data", nil, nil},
		{"empty run", []time.Duration{}, []queuePoint{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			samples, queue := tt.samples, tt.queue
			if samples == nil {
				samples, queue = chartData()
			}
			path := filepath.Join(t.TempDir(), "out.svg")
			if err := writeChart(path, samples, queue, `title with <markup> & "quotes"`); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dec := xml.NewDecoder(f)
			counts := map[string]int{}
			root := ""
			for {
				tok, err := dec.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("SVG is not well-formed XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok {
					if root == "" {
						root = se.Name.Local
						if se.Name.Space != "http://www.w3.org/2000/svg" {
							t.Errorf("root namespace %q", se.Name.Space)
						}
					}
					counts[se.Name.Local]++
				}
			}
			if root != "svg" {
				t.Errorf("root element %q, want svg", root)
			}
			if counts["text"] < 8 || counts["line"] < 4 {
				t.Errorf("elements %v: want axes (lines) and labels (texts)", counts)
			}
			if len(samples) > 0 && (counts["rect"] < 3 || counts["polyline"] != 1) {
				t.Errorf("elements %v: want histogram bars and the queue line", counts)
			}
		})
	}
}

func TestChartPNG(t *testing.T) {
	samples, queue := chartData()
	path := filepath.Join(t.TempDir(), "out.png")
	if err := writeChart(path, samples, queue, "ignored"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Errorf("size %v, want %dx%d", b, chartW, chartH)
	}
	// A bar's colour somewhere in the histogram panel.
	found := false
	for x := plotLeft; x < plotRight && !found; x++ {
		r, g, b, _ := img.At(x, histBot-1).RGBA()
		found = r>>8 == 0x44 && g>>8 == 0x77 && b>>8 == 0xaa
	}
	if !found {
		t.Error("no histogram bar drawn")
	}
}

func TestHistogram(t *testing.T) {
	got := histogram([]time.Duration{
		300 * time.Microsecond, 400 * time.Microsecond, // ≤0.5
		time.Millisecond,     // ≤1 (edges are inclusive)
		4 * time.Millisecond, // ≤5
		time.Minute * 5,      // beyond the last edge
	})
	var labels []string
	var counts []int
	for _, b := range got {
		labels = append(labels, b.label)
		counts = append(counts, b.count)
	}
	if diff := cmp.Diff([]int{2, 1, 0, 1}, counts[:4]); diff != "" {
		t.Errorf("first buckets (-want +got):\n%s", diff)
	}
	if labels[0] != "≤0.5" || labels[len(labels)-1] != ">100000" || counts[len(counts)-1] != 1 {
		t.Errorf("labels %v counts %v", labels, counts)
	}
	if histogram(nil) != nil {
		t.Error("histogram of nothing is not empty")
	}
}

func TestAxis(t *testing.T) {
	for _, tt := range []struct {
		top              float64
		n                int
		integer          bool
		wantStep, wantTo float64
	}{
		{0, 5, true, 1, 1},
		{1, 5, true, 1, 1},
		{830, 5, true, 200, 1000},
		{3.2, 10, false, 0.5, 3.5},
		{4.5, 10, false, 0.5, 4.5},
	} {
		step, to := axis(tt.top, tt.n, tt.integer)
		if step != tt.wantStep || to != tt.wantTo {
			t.Errorf("axis(%v, %d, %v) = %v, %v; want %v, %v", tt.top, tt.n, tt.integer, step, to, tt.wantStep, tt.wantTo)
		}
	}
}
