package main

import (
	"sort"
	"sync"
	"time"
)

// tally is what one target saw in the measured window, as the result reports it.
type tally struct {
	Sent    int `json:"sent"`
	Served  int `json:"served"`
	Refused int `json:"refused"`
	Failed  int `json:"failed"`
	// LatenciesMs of 2xx answers to requests sent in the window, from each send.
	LatenciesMs []float64 `json:"latenciesMs"`
	// LessQueueMs: those latencies less the queue wait the answer named, where it named one.
	LessQueueMs []float64 `json:"lessQueueMs"`
}

// window counts what happens between open and close. Answers arriving in it count, also to
// requests sent before it (every target's backlog is treated alike). Requests sent in it are
// followed after it closed: their latencies are timed and their refusals and failures
// counted, so a slow or failed answer at the end is not left out.
type window struct {
	mu       sync.Mutex
	tallies  []tally
	openedAt time.Time
	closedAt time.Time
	isOpen   bool
	// pending: requests sent in the window and not yet answered, by target.
	pending []int
	// finished: the result is taken; answers still coming are not counted.
	finished bool
	// lateMs: how long after its due time each request of the window was sent.
	lateMs []float64
}

func newWindow(targets int) *window {
	return &window{tallies: make([]tally, targets), pending: make([]int, targets)}
}

func (w *window) open(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.openedAt, w.isOpen = at, true
}

func (w *window) close(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closedAt, w.isOpen = at, false
}

// inWindow: sent while the window was open (it may be closed by now).
func (w *window) inWindow(sent time.Time) bool {
	return !w.openedAt.IsZero() && !sent.Before(w.openedAt) && (w.isOpen || sent.Before(w.closedAt))
}

func (w *window) sent(target int, due, sent time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.isOpen {
		return
	}
	w.tallies[target].Sent++
	w.pending[target]++
	w.lateMs = append(w.lateMs, ms(sent.Sub(due)))
}

// answered records one request's end; err is a transport error (no answer).
func (w *window) answered(target int, sent, at time.Time, a answer, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return
	}
	t := &w.tallies[target]
	sentInWindow := w.inWindow(sent)
	if sentInWindow {
		w.pending[target]--
	}
	served := err == nil && a.status >= 200 && a.status < 300
	// After the window, a request of the window still counts when it was refused or failed:
	// left out, a late failure would go unseen.
	if w.isOpen || (sentInWindow && !served) {
		switch {
		case served:
			t.Served++
		case err == nil && (a.status == 429 || a.status == 503):
			t.Refused++
		default:
			t.Failed++
		}
	}
	if !served || !sentInWindow {
		return
	}
	latency := ms(at.Sub(sent))
	t.LatenciesMs = append(t.LatenciesMs, latency)
	if a.queueMs >= 0 {
		t.LessQueueMs = append(t.LessQueueMs, latency-a.queueMs)
	}
}

// finish takes the result: requests of the window still unanswered count as failed.
func (w *window) finish() []tally {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	for i, n := range w.pending {
		w.tallies[i].Failed += n
	}
	return w.tallies
}

// lateP99Ms: the 99th percentile of how late sends were, 0 when none was sent.
func (w *window) lateP99Ms() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lateMs) == 0 {
		return 0
	}
	late := append([]float64(nil), w.lateMs...)
	sort.Float64s(late)
	return late[(len(late)*99+99)/100-1]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
