// The jobs API against a real Fairlane (issue 15, point 1).

package fairlane_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	fairlane "fairlane.dev/sdk/go"
)

// The secrets of workspace demo in spec/test-vectors/fairlane-jobs.yaml: the first signs.
var secrets = []string{
	"whsec_BRIfLDlGU2BteoeUoa67yNXi7/wJFiMwPUpXZHF+i5g=",
	"whsec_CRorPE1eb4CRorPE1eb3CBkqO0xdbn+QobLD1OX2Bxg=",
}

type delivery struct {
	path   string
	header http.Header
	body   []byte
}

// jobsFairlane starts the Fairlane of fairlane-jobs.yaml with a webhook receiver of its own,
// and returns a client of it and what the receiver got so far.
func jobsFairlane(t *testing.T) (*fairlane.Client, func() []delivery) {
	t.Helper()
	ownServer(t)
	var mu sync.Mutex
	var received []delivery
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, delivery{r.URL.Path, r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	url, stop, err := startFairlane("fairlane-jobs.yaml",
		"ECHO_URL="+upstream.server.URL, "HOOKS_URL="+receiver.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	client, err := fairlane.NewClient(url, demoKey)
	if err != nil {
		t.Fatal(err)
	}
	return client, func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), received...)
	}
}

func waitFor(t *testing.T, client *fairlane.Client, id string) *fairlane.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	job, err := client.WaitForJob(ctx, id, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return job
}

func slowOn(path string, wait time.Duration) func(seen, http.ResponseWriter) bool {
	return func(s seen, _ http.ResponseWriter) bool {
		if s.Path == path {
			time.Sleep(wait)
		}
		return false
	}
}

func TestJobs(t *testing.T) {
	client, deliveries := jobsFairlane(t)
	ctx := context.Background()

	t.Run("queue, wait and read the upstream answer", func(t *testing.T) {
		upstream.reset(nil)
		queued, err := client.QueueRequest(ctx,
			fairlane.JobRequest{Method: "POST", Target: "echo", Path: "/orders", Body: map[string]string{"sku": "A-1"}},
			fairlane.WithTier("free"), fairlane.WithDeadline(time.Minute))
		if err != nil || queued.ID == "" {
			t.Fatalf("queued %+v, %v", queued, err)
		}
		job := waitFor(t, client, queued.ID)
		if job.State != fairlane.JobSucceeded || len(job.Attempts) < 1 || job.Response == nil || job.Response.Status != 200 {
			t.Fatalf("job %+v", job)
		}
		sent := upstream.received("/orders")
		if len(sent) < 1 || sent[0].Header.Get("Idempotency-Key") != queued.ID {
			t.Fatalf("upstream received %+v", sent)
		}
		var body map[string]string
		if json.Unmarshal(sent[0].Body, &body) != nil || body["sku"] != "A-1" {
			t.Fatalf("upstream body %q", sent[0].Body)
		}
	})

	t.Run("webhook delivered and verified", func(t *testing.T) {
		queued, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: "/hooked"},
			fairlane.WithWebhook(fairlane.Webhook{Target: "hooks", Path: "/fairlane"}))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(within)
		var got *delivery
		for got == nil {
			for _, d := range deliveries() {
				if d.path == "/fairlane" {
					got = &d
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no webhook delivered")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := fairlane.VerifyWebhook(got.header, got.body, secrets); err != nil {
			t.Fatal(err)
		}
		if got.header.Get("Webhook-Id") != queued.ID {
			t.Fatalf("webhook-id %q, job %s", got.header.Get("Webhook-Id"), queued.ID)
		}
		if err := fairlane.VerifyWebhook(got.header, got.body, secrets[:1]); err != nil {
			t.Fatalf("not signed with the first secret: %v", err)
		}
		var job fairlane.Job
		if json.Unmarshal(got.body, &job) != nil || job.ID != queued.ID || job.State != fairlane.JobSucceeded {
			t.Fatalf("payload %s", got.body)
		}
	})

	t.Run("same idempotency key, same job", func(t *testing.T) {
		request := fairlane.JobRequest{Method: "POST", Target: "echo", Path: "/once"}
		first, err := client.QueueRequest(ctx, request, fairlane.WithIdempotencyKey("go-once-1"))
		if err != nil {
			t.Fatal(err)
		}
		second, err := client.QueueRequest(ctx, request, fairlane.WithIdempotencyKey("go-once-1"))
		if err != nil || second.ID != first.ID {
			t.Fatalf("second %+v, %v; first %s", second, err, first.ID)
		}
	})

	t.Run("cancel a job not yet finished", func(t *testing.T) {
		upstream.reset(slowOn("/slow", 3*time.Second))
		defer upstream.reset(nil)
		queued, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: "/slow"})
		if err != nil {
			t.Fatal(err)
		}
		var refusal *fairlane.Error
		if _, err := client.RedeliverJob(ctx, queued.ID); !errors.As(err, &refusal) || refusal.Code() != "job_not_finished" {
			t.Fatalf("redeliver before the end: %v", err)
		}
		if job, err := client.CancelJob(ctx, queued.ID); err != nil || job.State != fairlane.JobCancelled {
			t.Fatalf("cancelled %+v, %v", job, err)
		}
		if job := waitFor(t, client, queued.ID); job.State != fairlane.JobCancelled {
			t.Fatalf("state %s", job.State)
		}
		if _, err := client.CancelJob(ctx, queued.ID); !errors.Is(err, fairlane.ErrConflict) {
			t.Fatalf("cancel again: %v", err)
		}
	})

	t.Run("redeliver a finished job", func(t *testing.T) {
		queued, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: "/again"},
			fairlane.WithWebhook(fairlane.Webhook{Target: "hooks", Path: "/again"}))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, queued.ID)
		if job, err := client.RedeliverJob(ctx, queued.ID); err != nil || job.ID != queued.ID {
			t.Fatalf("redelivered %+v, %v", job, err)
		}
	})

	t.Run("wait stops with its context", func(t *testing.T) {
		upstream.reset(slowOn("/slower", 2*time.Second))
		defer upstream.reset(nil)
		queued, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: "/slower"})
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		job, err := client.WaitForJob(short, queued.ID, 100*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) || job == nil || job.State.Final() {
			t.Fatalf("job %+v, %v", job, err)
		}
	})

	t.Run("list by state, page by page", func(t *testing.T) {
		ids := map[string]bool{}
		for _, path := range []string{"/list/0", "/list/1", "/list/2"} {
			queued, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, client, queued.ID)
			ids[queued.ID] = true
		}
		options := fairlane.ListOptions{State: fairlane.JobSucceeded, Limit: 2}
		for {
			page, err := client.ListJobs(ctx, options)
			if err != nil || len(page.Jobs) > 2 {
				t.Fatalf("page %+v, %v", page, err)
			}
			for _, job := range page.Jobs {
				if job.State != fairlane.JobSucceeded {
					t.Fatalf("listed %+v", job)
				}
				delete(ids, job.ID)
			}
			if page.Cursor == "" {
				break
			}
			options.Cursor = page.Cursor
		}
		if len(ids) > 0 {
			t.Fatalf("not listed: %v", ids)
		}
	})

	t.Run("API refusals are errors by kind", func(t *testing.T) {
		var refusal *fairlane.Error
		if _, err := client.GetJob(ctx, "job_that_does_not_exist"); !errors.As(err, &refusal) || refusal.Code() != "job_not_found" {
			t.Fatalf("unknown job: %v", err)
		}
		stranger, _ := fairlane.NewClient(client.BaseURL(), "fl_nobody")
		_, err := stranger.QueueRequest(ctx, fairlane.JobRequest{Method: "GET", Target: "echo", Path: "/x"})
		if !errors.Is(err, fairlane.ErrAuthentication) {
			t.Fatalf("unknown key: %v", err)
		}
		// Neither a target nor a URL: nothing to call.
		if _, err := client.QueueRequest(ctx, fairlane.JobRequest{Method: "GET"}); !errors.Is(err, fairlane.ErrBadRequest) {
			t.Fatalf("nothing to call: %v", err)
		}
		request := fairlane.JobRequest{Method: "POST", Target: "echo", Path: "/taken"}
		if _, err := client.QueueRequest(ctx, request, fairlane.WithIdempotencyKey("go-taken")); err != nil {
			t.Fatal(err)
		}
		request.Body = map[string]bool{"other": true}
		_, err = client.QueueRequest(ctx, request, fairlane.WithIdempotencyKey("go-taken"))
		if !errors.As(err, &refusal) || !errors.Is(err, fairlane.ErrConflict) || refusal.Code() != "idempotency_conflict" {
			t.Fatalf("key taken: %v", err)
		}
	})
}
