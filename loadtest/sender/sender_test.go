package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// events runs the plan and returns its output lines, decoded.
func events(t *testing.T, p plan) []event {
	t.Helper()
	var out bytes.Buffer
	if err := run(p, &out); err != nil {
		t.Fatal(err)
	}
	var got []event
	scanner := bufio.NewScanner(&out)
	scanner.Buffer(nil, 1<<24)
	for scanner.Scan() {
		var e event
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	return got
}

func result(t *testing.T, p plan) event {
	t.Helper()
	got := events(t, p)
	names := make([]string, len(got))
	for i, e := range got {
		names[i] = e.Event
	}
	if strings.Join(names, ",") != "window-open,window-closed,result" {
		t.Fatalf("events %v", names)
	}
	return got[2]
}

func server(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(handler)
	t.Cleanup(s.Close)
	return s.URL
}

func TestCountsEachKindOfAnswerInTheWindow(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-Fairlane-Queue-Ms", "0")
			_, _ = w.Write([]byte("ok"))
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	r := result(t, plan{
		Targets:     []targetSpec{{URL: url + "/ok"}, {URL: url + "/busy"}, {URL: url + "/broken"}},
		RatePerSec:  300,
		WarmupSec:   0.2,
		DurationSec: 1,
	})
	ok, busy, broken := r.Targets[0], r.Targets[1], r.Targets[2]
	// Sends are scheduled, not timed: 300 are due in the window, 100 to each target in turn.
	for i, tl := range r.Targets {
		if tl.Sent != 100 {
			t.Fatalf("target %d: %d sent in the window, want 100", i, tl.Sent)
		}
	}
	if ok.Served == 0 || ok.Refused+ok.Failed != 0 || len(ok.LatenciesMs) != 100 || len(ok.LessQueueMs) != 100 {
		t.Fatalf("ok: %+v", summary(ok))
	}
	if busy.Refused == 0 || busy.Served+busy.Failed != 0 || len(busy.LatenciesMs) != 0 {
		t.Fatalf("busy: %+v", summary(busy))
	}
	if broken.Failed == 0 || broken.Served+broken.Refused != 0 {
		t.Fatalf("broken: %+v", summary(broken))
	}
}

func TestSlowAnswersSentInTheWindowAreTimedAfterItCloses(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	})
	r := result(t, plan{Targets: []targetSpec{{URL: url}}, RatePerSec: 50, DurationSec: 0.2})
	tl := r.Targets[0]
	if tl.Sent != 10 || len(tl.LatenciesMs) != 10 || tl.Failed != 0 {
		t.Fatalf("%+v", summary(tl))
	}
	for _, ms := range tl.LatenciesMs {
		if ms < 300 {
			t.Fatalf("latency %.1f ms below the server's own 300", ms)
		}
	}
}

func TestUnansweredRequestsOfTheWindowCountAsFailed(t *testing.T) {
	release := make(chan struct{})
	url := server(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	t.Cleanup(func() { close(release) })
	r := result(t, plan{Targets: []targetSpec{{URL: url}}, RatePerSec: 50, DurationSec: 0.2, DrainSec: 0.2})
	if tl := r.Targets[0]; tl.Sent != 10 || tl.Failed != 10 || tl.Served != 0 {
		t.Fatalf("%+v", summary(tl))
	}
}

func TestConnectionsTheServerClosesAreReplaced(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("bye"))
	})
	r := result(t, plan{Targets: []targetSpec{{URL: url}}, RatePerSec: 200, DurationSec: 0.5})
	if tl := r.Targets[0]; tl.Sent != 100 || len(tl.LatenciesMs) != 100 || tl.Failed != 0 {
		t.Fatalf("%+v", summary(tl))
	}
}

func TestRequestsBeyondTheConnectionLimitWaitForOne(t *testing.T) {
	var mu sync.Mutex
	open, most := 0, 0
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		open--
		mu.Unlock()
	})
	// 20 requests due in 0.1 s, each answered in 20 ms or more: most must wait for the one connection.
	r := result(t, plan{Targets: []targetSpec{{URL: url}}, RatePerSec: 200, DurationSec: 0.1, MaxConnections: 1})
	if tl := r.Targets[0]; tl.Sent != 20 || len(tl.LatenciesMs) != 20 || tl.Failed != 0 {
		t.Fatalf("%+v", summary(tl))
	}
	if most != 1 {
		t.Fatalf("%d requests at once on a limit of one connection", most)
	}
}

func TestLateFailuresOfTheWindowCount(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		w.WriteHeader(http.StatusBadGateway)
	})
	r := result(t, plan{Targets: []targetSpec{{URL: url}}, RatePerSec: 50, DurationSec: 0.1})
	if tl := r.Targets[0]; tl.Sent != 5 || tl.Failed != 5 {
		t.Fatalf("%+v", summary(tl))
	}
}

func TestHeadersAreSent(t *testing.T) {
	seen := make(chan string, 1000)
	url := server(t, func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Get("Authorization") })
	result(t, plan{
		Targets:     []targetSpec{{URL: url, Headers: map[string]string{"authorization": "Bearer k"}}},
		RatePerSec:  100,
		DurationSec: 0.1,
	})
	select {
	case got := <-seen:
		if got != "Bearer k" {
			t.Fatalf("authorization %q", got)
		}
	default:
		t.Fatal("no request reached the server")
	}
}

func TestBadPlansAreRefused(t *testing.T) {
	good := targetSpec{URL: "http://127.0.0.1:1/"}
	for name, p := range map[string]plan{
		"no targets":    {RatePerSec: 1, DurationSec: 1},
		"no rate":       {Targets: []targetSpec{good}, DurationSec: 1},
		"no duration":   {Targets: []targetSpec{good}, RatePerSec: 1},
		"negative":      {Targets: []targetSpec{good}, RatePerSec: 1, DurationSec: 1, WarmupSec: -1},
		"https":         {Targets: []targetSpec{{URL: "https://example.com/"}}, RatePerSec: 1, DurationSec: 1},
		"header breaks": {Targets: []targetSpec{{URL: good.URL, Headers: map[string]string{"a": "b\r\nc: d"}}}, RatePerSec: 1, DurationSec: 1},
	} {
		if err := run(p, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// summary is a tally without its latencies, for failure messages.
func summary(tl tally) map[string]int {
	return map[string]int{
		"sent": tl.Sent, "served": tl.Served, "refused": tl.Refused, "failed": tl.Failed,
		"latencies": len(tl.LatenciesMs), "lessQueue": len(tl.LessQueueMs),
	}
}
