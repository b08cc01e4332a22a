package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bucketEdges are the upper edges, in milliseconds, of the time-to-match
// histogram's buckets: 1-2-5 steps, so that both sub-millisecond matching
// and multi-second waits get readable bars. The last bucket is open.
var bucketEdges = []float64{
	0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500,
	1000, 2000, 5000, 10000, 20000, 50000, 100000, math.Inf(1),
}

// bucket is one bar of the histogram.
type bucket struct {
	label string // upper edge, e.g. "≤0.5"
	count int
}

// histogram sorts samples into bucketEdges, keeping the buckets from the
// first non-empty one to the last.
func histogram(samples []time.Duration) []bucket {
	counts := make([]int, len(bucketEdges))
	for _, d := range samples {
		v := float64(d) / float64(time.Millisecond)
		i := 0
		for v > bucketEdges[i] {
			i++
		}
		counts[i]++
	}
	first, last := -1, -1
	for i, n := range counts {
		if n > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	out := make([]bucket, 0, last-first+1)
	for i := first; i <= last; i++ {
		label := "≤" + strconv.FormatFloat(bucketEdges[i], 'g', -1, 64)
		if math.IsInf(bucketEdges[i], 1) {
			label = ">" + strconv.FormatFloat(bucketEdges[i-1], 'g', -1, 64)
		}
		out = append(out, bucket{label: label, count: counts[i]})
	}
	return out
}

// axis returns the tick step and the top of an axis from 0 that shows
// values up to top in about n 1-2-5 steps; counts (integer) step by at
// least 1.
func axis(top float64, n int, integer bool) (step, axisTop float64) {
	step = 1
	if top > 0 {
		raw := top / float64(n)
		mag := math.Pow(10, math.Floor(math.Log10(raw)))
		step = 10 * mag
		for _, m := range []float64{1, 2, 5} {
			if m*mag >= raw {
				step = m * mag
				break
			}
		}
	}
	if integer {
		step = math.Max(step, 1)
	}
	return step, math.Max(step, math.Ceil(top/step)*step)
}

// tickLabel formats a tick value without float noise (0.6, not
// 0.6000000000000001).
func tickLabel(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// chartTitle is the chart's heading: what was run, and the figures.
func chartTitle(r *Report) string {
	shape := fmt.Sprintf("%d players", r.PlannedPlayers)
	if r.Mode == "rate" {
		shape = fmt.Sprintf("%g joins/s for %gs", r.Rate, r.DurationS)
	}
	return fmt.Sprintf("matchload, %s: p50 %.3f ms, p99 %.3f ms, max %.3f ms, %.1f matches/s",
		shape, r.TimeToMatch.P50, r.TimeToMatch.P99, r.TimeToMatch.Max, r.Throughput)
}

// writeChart writes the chart to path, as SVG or PNG by its extension.
func writeChart(path string, samples []time.Duration, queue []queuePoint, title string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if strings.EqualFold(filepath.Ext(path), ".png") {
		err = renderPNG(w, samples, queue)
	} else {
		err = renderSVG(w, samples, queue, title)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Chart geometry, shared by SVG and PNG: two panels, one above the other.
const (
	chartW    = 960
	chartH    = 720
	plotLeft  = 80
	plotRight = chartW - 30
	histTop   = 70
	histBot   = 330
	queueTop  = 430
	queueBot  = 660
)

// renderSVG draws the histogram and the queue-size line as SVG, with axes,
// ticks and labels. It is written by hand to keep matchload free of
// dependencies.
func renderSVG(w io.Writer, samples []time.Duration, queue []queuePoint, title string) error {
	var b strings.Builder
	text := func(x, y float64, anchor, size, s string, extra string) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%s"%s>`, x, y, anchor, size, extra)
		xml.EscapeText(&b, []byte(s))
		b.WriteString("</text>\n")
	}
	line := func(x1, y1, x2, y2 float64, stroke string) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x1, y1, x2, y2, stroke)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	text(chartW/2, 28, "middle", "16", title, ` font-weight="bold"`)

	// Histogram of time-to-match.
	hist := histogram(samples)
	text(chartW/2, histTop-14, "middle", "14", fmt.Sprintf("Time to match (%d samples)", len(samples)), "")
	top := 0
	for _, bk := range hist {
		top = max(top, bk.count)
	}
	step, yMax := axis(float64(top), 5, true)
	yOf := func(v float64) float64 { return histBot - v/yMax*(histBot-histTop) }
	for k := 0; float64(k)*step <= yMax*1.0001; k++ {
		v := float64(k) * step
		y := yOf(v)
		line(plotLeft-5, y, plotRight, y, "#e0e0e0")
		text(plotLeft-8, y+4, "end", "11", tickLabel(v), "")
	}
	if n := len(hist); n > 0 {
		slot := float64(plotRight-plotLeft) / float64(n)
		for i, bk := range hist {
			x := plotLeft + float64(i)*slot
			y := yOf(float64(bk.count))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4477aa"><title>%s ms: %d</title></rect>`+"\n",
				x+slot*0.1, y, slot*0.8, histBot-y, bk.label, bk.count)
			text(x+slot/2, histBot+16, "middle", "11", bk.label, "")
		}
	} else {
		text(chartW/2, (histTop+histBot)/2, "middle", "13", "no matches", "")
	}
	line(plotLeft, histTop, plotLeft, histBot, "black")
	line(plotLeft, histBot, plotRight, histBot, "black")
	text(chartW/2, histBot+38, "middle", "12", "time to match, ms (bucket upper edge)", "")
	text(16, (histTop+histBot)/2, "middle", "12", "players", fmt.Sprintf(` transform="rotate(-90 16 %d)"`, (histTop+histBot)/2))

	// Queue size over time.
	text(chartW/2, queueTop-14, "middle", "14", fmt.Sprintf("Queue size over time (first URL, every %v)", queueEvery), "")
	tMax, qMax := 1.0, 0
	for _, q := range queue {
		tMax = math.Max(tMax, q.At.Seconds())
		qMax = max(qMax, q.Size)
	}
	xStep, tMax := axis(tMax, 10, false)
	qStep, qTop := axis(float64(qMax), 5, true)
	xOf := func(t float64) float64 { return plotLeft + t/tMax*(plotRight-plotLeft) }
	qOf := func(v float64) float64 { return queueBot - v/qTop*(queueBot-queueTop) }
	for k := 0; float64(k)*qStep <= qTop*1.0001; k++ {
		v := float64(k) * qStep
		y := qOf(v)
		line(plotLeft-5, y, plotRight, y, "#e0e0e0")
		text(plotLeft-8, y+4, "end", "11", tickLabel(v), "")
	}
	for k := 0; float64(k)*xStep <= tMax*1.0001; k++ {
		t := float64(k) * xStep
		x := xOf(t)
		line(x, queueBot, x, queueBot+5, "black")
		text(x, queueBot+18, "middle", "11", tickLabel(t), "")
	}
	if len(queue) > 0 {
		// A step line: a sample holds until the next one, which is all
		// that is known between them.
		b.WriteString(`<polyline fill="none" stroke="#cc6677" stroke-width="1.5" points="`)
		for i, q := range queue {
			if i > 0 {
				fmt.Fprintf(&b, " %.1f,%.1f ", xOf(q.At.Seconds()), qOf(float64(queue[i-1].Size)))
			}
			fmt.Fprintf(&b, "%.1f,%.1f", xOf(q.At.Seconds()), qOf(float64(q.Size)))
		}
		b.WriteString(`"/>` + "\n")
	} else {
		text(chartW/2, (queueTop+queueBot)/2, "middle", "13", "no samples", "")
	}
	line(plotLeft, queueTop, plotLeft, queueBot, "black")
	line(plotLeft, queueBot, plotRight, queueBot, "black")
	text(chartW/2, queueBot+40, "middle", "12", "seconds since the start of the measured phase", "")
	text(16, (queueTop+queueBot)/2, "middle", "12", "waiting players", fmt.Sprintf(` transform="rotate(-90 16 %d)"`, (queueTop+queueBot)/2))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// renderPNG draws the same two panels as renderSVG with the standard
// library alone: bars, a line and axes, without text (the SVG has the
// labels).
func renderPNG(w io.Writer, samples []time.Duration, queue []queuePoint) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{0xe0, 0xe0, 0xe0, 255}
	blue := color.RGBA{0x44, 0x77, 0xaa, 255}
	red := color.RGBA{0xcc, 0x66, 0x77, 255}

	hist := histogram(samples)
	top := 0
	for _, bk := range hist {
		top = max(top, bk.count)
	}
	step, yMax := axis(float64(top), 5, true)
	for k := 1; float64(k)*step <= yMax*1.0001; k++ {
		y := histBot - int(float64(k)*step/yMax*(histBot-histTop))
		drawLine(img, plotLeft, y, plotRight, y, grey)
	}
	if n := len(hist); n > 0 {
		slot := float64(plotRight-plotLeft) / float64(n)
		for i, bk := range hist {
			x0 := plotLeft + int(float64(i)*slot+slot*0.1)
			x1 := plotLeft + int(float64(i)*slot+slot*0.9)
			y0 := histBot - int(float64(bk.count)/yMax*(histBot-histTop))
			draw.Draw(img, image.Rect(x0, y0, x1, histBot), image.NewUniform(blue), image.Point{}, draw.Src)
		}
	}
	drawLine(img, plotLeft, histTop, plotLeft, histBot, black)
	drawLine(img, plotLeft, histBot, plotRight, histBot, black)

	tMax, qMax := 1.0, 0
	for _, q := range queue {
		tMax = math.Max(tMax, q.At.Seconds())
		qMax = max(qMax, q.Size)
	}
	_, tMax = axis(tMax, 10, false)
	qStep, qTop := axis(float64(qMax), 5, true)
	for k := 1; float64(k)*qStep <= qTop*1.0001; k++ {
		y := queueBot - int(float64(k)*qStep/qTop*(queueBot-queueTop))
		drawLine(img, plotLeft, y, plotRight, y, grey)
	}
	px := func(q queuePoint) (int, int) {
		return plotLeft + int(q.At.Seconds()/tMax*(plotRight-plotLeft)), queueBot - int(float64(q.Size)/qTop*(queueBot-queueTop))
	}
	for i := 1; i < len(queue); i++ {
		x0, y0 := px(queue[i-1])
		x1, y1 := px(queue[i])
		drawLine(img, x0, y0, x1, y0, red) // a step line, as in the SVG
		drawLine(img, x1, y0, x1, y1, red)
	}
	drawLine(img, plotLeft, queueTop, plotLeft, queueBot, black)
	drawLine(img, plotLeft, queueBot, plotRight, queueBot, black)
	return png.Encode(w, img)
}

// drawLine draws a one-pixel line from (x0,y0) to (x1,y1) (Bresenham).
func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// abs is |v|.
func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
