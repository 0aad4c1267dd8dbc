package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The fault tests watch the items map's view all along the load: a map
// must never show a bare Running while its stream is stalled. Two checks
// say so without knowing the engine's insides:
//
//   - while a server is known to be down (after a grace for the engine
//     to notice a closed connection), the map shows a condition;
//   - whenever the map shows a bare Running under load, within
//     hiddenFor either changes get applied or the view shows a condition.

const (
	// viewEvery is how often the watcher reads the map's view.
	viewEvery = 50 * time.Millisecond
	// downGrace is how long after a server went down the view may still
	// show a bare Running: the engine sees a closed connection at once,
	// this covers the machine being slow.
	downGrace = time.Second
	// hiddenFor is how long a bare Running may last with nothing applied
	// and no condition shown, under a steady load.
	hiddenFor = 5 * time.Second
)

// viewSample is one reading of the map's view.
type viewSample struct {
	at      time.Time
	status  string
	cond    *conditionJSON
	applied int64
}

func (s viewSample) bare() bool { return s.status == "Running" && s.cond == nil }

// viewSamples is the record of the map's view during a fault test.
type viewSamples struct {
	p       *engineProc
	quit    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples []viewSample
	down    [][2]time.Time // servers known down: [from, to)
	loadEnd time.Time
}

// watchViews reads the items map's view every viewEvery until stop. A
// read that fails (the engine is down) records nothing.
func watchViews(p *engineProc) *viewSamples {
	w := &viewSamples{p: p, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(viewEvery):
			}
			at := time.Now()
			resp, err := p.do("GET", "/api/v1/maps/items", nil)
			if err != nil {
				continue
			}
			var v faultMapView
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || v.Status == "" {
				continue
			}
			w.mu.Lock()
			w.samples = append(w.samples, viewSample{at: at, status: v.Status, cond: v.Condition, applied: v.applied()})
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *viewSamples) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

func (w *viewSamples) loadEnded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.loadEnd = time.Now()
}

// serverDown records that a server of the test was down (or going down)
// from from to to.
func (f *faultLink) serverDown(from, to time.Time) {
	f.seen.mu.Lock()
	defer f.seen.mu.Unlock()
	f.seen.down = append(f.seen.down, [2]time.Time{from, to})
}

// checkNeverHidden applies the two checks to the recorded views. With
// stallExpected (a server went down) the stall must also have been shown
// and logged, and be gone at the end (check requires no condition).
func (f *faultLink) checkNeverHidden(stallExpected bool) {
	t := f.t
	t.Helper()
	w := f.seen
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	var problems []string
	shown := 0
	for i, s := range w.samples {
		if !s.bare() {
			if s.cond != nil && s.cond.Kind == "stalled" {
				shown++
			}
			continue
		}
		for _, d := range w.down {
			if !s.at.Before(d[0].Add(downGrace)) && s.at.Before(d[1]) {
				problems = append(problems, fmt.Sprintf("%s: bare Running %v after the server went down", s.at.Format("15:04:05.000"), s.at.Sub(d[0]).Round(time.Millisecond)))
			}
		}
		if w.loadEnd.IsZero() || !s.at.Add(hiddenFor).Before(w.loadEnd) {
			continue // the load had ended: nothing to apply
		}
		if !w.livesAfter(i) {
			problems = append(problems, fmt.Sprintf("%s: bare Running, then nothing applied and no condition for %v", s.at.Format("15:04:05.000"), hiddenFor))
		}
	}
	t.Logf("map view read %d times: %d showed a stall", len(w.samples), shown)
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
		}
		t.Errorf("the map showed Running while its stream was stalled:\n%s\nactivity:\n%s", strings.Join(problems, "\n"), activityOf(t, f.p, "items"))
	}
	if stallExpected {
		if shown == 0 {
			t.Errorf("a server went down, yet the map view never showed a stall")
		}
		if log := activityOf(t, f.p, "items"); !strings.Contains(log, "stalled: DW") || !strings.Contains(log, "stall cleared") {
			t.Errorf("the activity log does not show the stall and its end:\n%s", log)
		}
	}
}

// livesAfter reports whether, after the bare Running sample i and within
// hiddenFor, the same engine applied changes or the view showed a
// condition. A restarted engine (its counts start again) counts as shown:
// its own samples are checked in turn.
func (w *viewSamples) livesAfter(i int) bool {
	s := w.samples[i]
	prev := s.applied
	for _, n := range w.samples[i+1:] {
		if n.at.Sub(s.at) > hiddenFor {
			return false
		}
		if n.cond != nil || n.status != "Running" || n.applied > s.applied || n.applied < prev {
			return true
		}
		prev = n.applied
	}
	// No sample after it within hiddenFor: the engine was down (killed).
	return true
}
