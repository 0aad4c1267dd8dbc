package web

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
)

// lagHistory keeps the last samples of each map's capture lag, for the
// sparklines.
type lagHistory struct {
	mu      sync.Mutex
	size    int
	samples map[string][]float64
}

func newLagHistory(size int) *lagHistory {
	return &lagHistory{size: size, samples: map[string][]float64{}}
}

func (h *lagHistory) add(name string, sec float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := append(h.samples[name], sec)
	if len(s) > h.size {
		s = s[len(s)-h.size:]
	}
	h.samples[name] = s
}

func (h *lagHistory) get(name string) []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]float64(nil), h.samples[name]...)
}

// sparkline draws a map's lag history as a small inline SVG. Its text
// alternative states the latest and the highest lag, so the chart is not
// the only way to read them.
func (s *Server) sparkline(name string) template.HTML {
	const w, h = 120.0, 24.0
	vals := s.lag.get(name)
	latest, peak := 0.0, 0.0
	for _, v := range vals {
		peak = max(peak, v)
	}
	if len(vals) > 0 {
		latest = vals[len(vals)-1]
	}
	label := fmt.Sprintf("Lag over the last %d samples: now %s, highest %s", len(vals), seconds(latest), seconds(peak))
	var pts strings.Builder
	scale := max(peak, 1)
	for i, v := range vals {
		x := w
		if len(vals) > 1 {
			x = float64(i) * w / float64(len(vals)-1)
		}
		y := h - 2 - (v/scale)*(h-4)
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	return template.HTML(fmt.Sprintf( // #nosec: every value is a number or escaped text
		`<svg class="spark" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s"><title>%s</title><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="%s"/></svg>`,
		w, h, w, h, template.HTMLEscapeString(label), template.HTMLEscapeString(label), strings.TrimSpace(pts.String())))
}
