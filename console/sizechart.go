package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// sizeChart draws a segment's sizeHistory ([{at, size}], oldest first) as
// an inline SVG line, drawn on the server: the CSP allows no inline script
// or style, and a chart needs neither. Its text alternative gives the
// first, last, lowest and highest sizes.
func sizeChart(history any, width, height int) template.HTML {
	type point struct {
		at   time.Time
		size float64
	}
	var pts []point
	for _, h := range list(history) {
		m := mapOf(h)
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["at"]))
		size, ok := m["size"].(float64)
		if err == nil && ok {
			pts = append(pts, point{at, size})
		}
	}
	if len(pts) == 0 {
		return ""
	}
	lo, hi := pts[0].size, pts[0].size
	for _, p := range pts {
		lo, hi = min(lo, p.size), max(hi, p.size)
	}
	first, last := pts[0], pts[len(pts)-1]
	span := last.at.Sub(first.at)
	const pad = 2.0
	w, h := float64(width)-2*pad, float64(height)-2*pad
	var line strings.Builder
	for i, p := range pts {
		x := pad
		if span > 0 {
			x += w * float64(p.at.Sub(first.at)) / float64(span)
		} else if i > 0 {
			x += w
		}
		y := pad + h/2
		if hi > lo {
			y = pad + h*(1-(p.size-lo)/(hi-lo))
		}
		fmt.Fprintf(&line, "%.1f,%.1f ", x, y)
	}
	if len(pts) == 1 {
		fmt.Fprintf(&line, "%.1f,%.1f", pad+w, pad+h/2)
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	label := fmt.Sprintf("Members over time: %.0f at %s, %.0f at %s; lowest %.0f, highest %.0f",
		first.size, day(first.at), last.size, day(last.at), lo, hi)
	return template.HTML(fmt.Sprintf(`<svg class="sizechart" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">`+
		`<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="%s"/></svg>`,
		template.HTMLEscapeString(label), width, height, width, height, strings.TrimSpace(line.String())))
}
