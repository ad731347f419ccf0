package fairlane_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	fairlane "fairlane.dev/sdk/go"
)

func newClient(t *testing.T, key string, options ...fairlane.Option) *fairlane.Client {
	t.Helper()
	client, err := fairlane.NewClient(fairlaneURL, key, options...)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func send(t *testing.T, client *fairlane.Client, method, url, body string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	request, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		t.Fatal(err)
	}
	response, err := client.HTTPClient().Do(request)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { response.Body.Close() })
	return response
}

func TestTargetReachedWithoutTheKey(t *testing.T) {
	client := newClient(t, demoKey)
	if got, want := client.TargetURL("echo"), fairlaneURL+"/t/echo"; got != want {
		t.Fatalf("TargetURL %q, want %q", got, want)
	}
	if upstream != nil {
		upstream.reset(nil)
	}
	response := send(t, client, http.MethodPost, client.TargetURL("echo")+"/orders?id=7", `{"n":1}`)
	if response.StatusCode != 200 || response.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, request id %q", response.StatusCode, response.Header.Get("X-Request-Id"))
	}
	if upstream == nil {
		return
	}
	received := upstream.received("/orders?id=7")
	if len(received) != 1 || received[0].Method != "POST" || string(received[0].Body) != `{"n":1}` {
		t.Fatalf("upstream received %+v", received)
	}
	for name, values := range received[0].Header {
		if strings.Contains(strings.Join(values, ","), demoKey) {
			t.Fatalf("the key reached the upstream in %s", name)
		}
	}
}

func TestUnknownKeyIsAnAuthenticationError(t *testing.T) {
	client := newClient(t, "fl_nobody")
	response := send(t, client, http.MethodGet, client.TargetURL("echo")+"/x", "")
	err := fairlane.ProblemError(response)
	var refusal *fairlane.Error
	if !errors.As(err, &refusal) || !errors.Is(err, fairlane.ErrAuthentication) {
		t.Fatalf("got %v, want an authentication error", err)
	}
	if refusal.Status != 401 || refusal.Code() != "unauthenticated" || refusal.Problem.Stage != "authenticate" {
		t.Fatalf("got %+v", refusal.Problem)
	}
	if refusal.Problem.RequestID != response.Header.Get("X-Request-Id") {
		t.Fatalf("request id %q, header %q", refusal.Problem.RequestID, response.Header.Get("X-Request-Id"))
	}
	// The body is still there for the caller.
	if body, _ := io.ReadAll(response.Body); !strings.Contains(string(body), "unauthenticated") {
		t.Fatalf("body %q", body)
	}
}

func TestTargetNotAllowedIsPermissionDenied(t *testing.T) {
	client := newClient(t, demoKey)
	err := fairlane.ProblemError(send(t, client, http.MethodGet, client.TargetURL("billing")+"/x", ""))
	var refusal *fairlane.Error
	if !errors.Is(err, fairlane.ErrPermissionDenied) || !errors.As(err, &refusal) || refusal.Code() != "forbidden_target" {
		t.Fatalf("got %v, want forbidden_target", err)
	}
}

func TestURLFormForAnotherHost(t *testing.T) {
	ownServer(t) // examples/quickstart.yaml approves every public host
	client := newClient(t, demoKey)
	err := fairlane.ProblemError(send(t, client, http.MethodGet, "https://api.example.com/v1/models?page=2", ""))
	var refusal *fairlane.Error
	// The demo workspace approves no host: Fairlane read the URL form and refused it.
	if !errors.Is(err, fairlane.ErrPermissionDenied) || !errors.As(err, &refusal) || refusal.Code() != "destination_blocked" {
		t.Fatalf("got %v, want destination_blocked", err)
	}
}

func TestURLFormWhosePathNamesATargetGoesToItsHost(t *testing.T) {
	ownServer(t) // examples/quickstart.yaml approves every public host
	client := newClient(t, demoKey)
	upstream.reset(nil)
	err := fairlane.ProblemError(send(t, client, http.MethodGet, "https://api.example.com/t/echo/x", ""))
	var refusal *fairlane.Error
	// Fairlane read the URL form (and refused the host), not the target form of target echo.
	if !errors.Is(err, fairlane.ErrPermissionDenied) || !errors.As(err, &refusal) || refusal.Code() != "destination_blocked" {
		t.Fatalf("got %v, want destination_blocked", err)
	}
	if len(upstream.received("/x")) != 0 {
		t.Fatal("the request reached target echo")
	}
}

func TestRateLimitedWithRetryAfterAndRetriesThatWaitItOut(t *testing.T) {
	ownServer(t)
	upstream.reset(nil)
	plain := newClient(t, instantKey)
	// 1 request per second, never queued: one of a few quick requests is refused, however
	// slow the machine.
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		err = fairlane.ProblemError(send(t, plain, http.MethodGet, plain.TargetURL("echo")+"/a", ""))
	}
	var refusal *fairlane.Error
	if !errors.Is(err, fairlane.ErrRateLimited) || !errors.As(err, &refusal) {
		t.Fatalf("got %v, want a rate limit error", err)
	}
	if refusal.Code() != "rate_limited" || !refusal.Retryable() || refusal.RetryAfter < 1e9 {
		t.Fatalf("got %+v, retry after %v", refusal.Problem, refusal.RetryAfter)
	}

	patient := newClient(t, instantKey, fairlane.WithRetries(3))
	response := send(t, patient, http.MethodPost, patient.TargetURL("echo")+"/c", `{"again":true}`)
	if response.StatusCode != 200 {
		t.Fatalf("with retries: %d", response.StatusCode)
	}
	if sent := upstream.received("/c"); len(sent) != 1 || string(sent[0].Body) != `{"again":true}` {
		t.Fatalf("upstream received %+v", sent)
	}
}

func TestRetriesLeaveARefusalWhoseWaitIsTooLong(t *testing.T) {
	ownServer(t)
	client := newClient(t, instantKey, fairlane.WithRetries(3), fairlane.WithMaxRetryWait(0))
	first := send(t, client, http.MethodGet, client.TargetURL("echo")+"/d", "").StatusCode
	second := send(t, client, http.MethodGet, client.TargetURL("echo")+"/e", "").StatusCode
	if first != 429 && second != 429 {
		t.Fatalf("statuses %d %d, want a 429", first, second)
	}
}

func TestUpstream429PassesThroughAndIsNeverRetried(t *testing.T) {
	ownServer(t)
	upstream.reset(func(_ seen, w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(429)
		io.WriteString(w, "slow down")
		return true
	})
	defer upstream.reset(nil)
	client := newClient(t, demoKey, fairlane.WithRetries(3))
	response := send(t, client, http.MethodPost, client.TargetURL("echo")+"/busy", "x")
	if response.StatusCode != 429 || fairlane.ProblemError(response) != nil {
		t.Fatalf("status %d, problem %v", response.StatusCode, fairlane.ProblemError(response))
	}
	if body, _ := io.ReadAll(response.Body); string(body) != "slow down" {
		t.Fatalf("body %q", body)
	}
	if sent := upstream.received("/busy"); len(sent) != 1 {
		t.Fatalf("upstream received %d requests", len(sent))
	}
}

func TestNewClientRefusesARelativeBaseURL(t *testing.T) {
	if _, err := fairlane.NewClient("127.0.0.1:8080", demoKey); err == nil {
		t.Fatal("accepted a base URL without a scheme")
	}
}
