package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// plan is what to send, read as JSON.
type plan struct {
	Targets     []targetSpec `json:"targets"`
	RatePerSec  float64      `json:"ratePerSec"`
	WarmupSec   float64      `json:"warmupSec"`
	DurationSec float64      `json:"durationSec"`
	// DrainSec: how long after the window to wait for its last answers; 30 when 0.
	DrainSec float64 `json:"drainSec"`
	// MaxConnections per target; 1024 when 0.
	MaxConnections int `json:"maxConnections"`
}

type targetSpec struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// event is one line of the sender's output.
type event struct {
	Event string `json:"event"`
	// The result's, on "result".
	ElapsedSec float64 `json:"elapsedSec,omitempty"`
	Targets    []tally `json:"targets,omitempty"`
	// LateP99Ms: how late the window's sends went out after their due time (99th percentile).
	LateP99Ms float64 `json:"lateP99Ms,omitempty"`
}

func (p plan) check() error {
	switch {
	case len(p.Targets) == 0:
		return fmt.Errorf("no targets")
	case !(p.RatePerSec > 0):
		return fmt.Errorf("ratePerSec must be above 0")
	case !(p.DurationSec > 0):
		return fmt.Errorf("durationSec must be above 0")
	case p.WarmupSec < 0 || p.DrainSec < 0 || p.MaxConnections < 0:
		return fmt.Errorf("warmupSec, drainSec and maxConnections cannot be negative")
	}
	return nil
}

// run sends the plan's requests at its rate, round robin over its targets, whatever the
// answers (an open loop), each from its own goroutine, and writes "window-open",
// "window-closed" and "result" to out.
func run(p plan, out io.Writer) error {
	if err := p.check(); err != nil {
		return err
	}
	l, err := newLoop(p)
	if err != nil {
		return err
	}
	emit := json.NewEncoder(out)
	opensAt := l.start.Add(seconds(p.WarmupSec))
	closesAt := opensAt.Add(seconds(p.DurationSec))
	l.sendUntil(opensAt)
	l.window.open(time.Now())
	if err := emit.Encode(event{Event: "window-open"}); err != nil {
		return err
	}
	l.sendUntil(closesAt)
	closedAt := time.Now()
	l.window.close(closedAt)
	if err := emit.Encode(event{Event: "window-closed"}); err != nil {
		return err
	}
	drain := p.DrainSec
	if drain == 0 {
		drain = 30
	}
	waitAtMost(&l.inFlight, seconds(drain))
	for _, pl := range l.pools {
		pl.close()
	}
	return emit.Encode(event{
		Event:      "result",
		ElapsedSec: closedAt.Sub(opensAt).Seconds(),
		Targets:    l.window.finish(),
		LateP99Ms:  l.window.lateP99Ms(),
	})
}

// loop is the sending side of a run: request i is due at start + i / rate.
type loop struct {
	targets  []target
	pools    []*pool
	window   *window
	inFlight sync.WaitGroup
	interval float64
	start    time.Time
	next     int
}

func newLoop(p plan) (*loop, error) {
	maxConnections := p.MaxConnections
	if maxConnections == 0 {
		maxConnections = 1024
	}
	l := &loop{
		targets:  make([]target, len(p.Targets)),
		pools:    make([]*pool, len(p.Targets)),
		window:   newWindow(len(p.Targets)),
		interval: float64(time.Second) / p.RatePerSec,
		start:    time.Now(),
	}
	for i, spec := range p.Targets {
		t, err := newTarget(spec.URL, spec.Headers)
		if err != nil {
			return nil, err
		}
		l.targets[i], l.pools[i] = t, newPool(t.host, maxConnections)
	}
	return l, nil
}

// sendUntil sends every request due before end, then sleeps until end.
func (l *loop) sendUntil(end time.Time) {
	for {
		due := l.start.Add(time.Duration(float64(l.next) * l.interval))
		if !due.Before(end) {
			break
		}
		// Go's timers wake up to a millisecond late: what fell due meanwhile goes out at once,
		// as the Node sender does on its 1 ms tick (loadtest/bench/lib/fixed-rate.ts).
		time.Sleep(time.Until(due))
		index := l.next % len(l.targets)
		l.next++
		sent := time.Now()
		l.window.sent(index, due, sent)
		l.inFlight.Add(1)
		go func() {
			defer l.inFlight.Done()
			a, err := send(l.pools[index], l.targets[index].request)
			l.window.answered(index, sent, time.Now(), a, err)
		}()
	}
	time.Sleep(time.Until(end))
}

// send makes one request on a pooled connection; a connection that failed or was told to
// close is not used again.
func send(p *pool, request []byte) (answer, error) {
	c, err := p.get()
	if err != nil {
		return answer{}, err
	}
	a, err := c.exchange(request)
	if err != nil || !a.reusable {
		p.discard(c)
	} else {
		p.put(c)
	}
	return a, err
}

func waitAtMost(group *sync.WaitGroup, limit time.Duration) {
	done := make(chan struct{})
	go func() {
		group.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
