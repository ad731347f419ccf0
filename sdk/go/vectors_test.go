package fairlane_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	fairlane "fairlane.dev/sdk/go"
)

func TestVerifyWebhookVectors(t *testing.T) {
	var vectors struct {
		ToleranceSeconds int `json:"toleranceSeconds"`
		Cases            []struct {
			Name    string            `json:"name"`
			Secrets []string          `json:"secrets"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
			Now     int64             `json:"now"`
			Valid   bool              `json:"valid"`
			Reason  string            `json:"reason"`
		} `json:"cases"`
	}
	readVectors(t, "webhook-signatures.json", &vectors)
	for _, vector := range vectors.Cases {
		t.Run(vector.Name, func(t *testing.T) {
			header := http.Header{}
			for name, value := range vector.Headers {
				header.Set(name, value)
			}
			err := fairlane.VerifyWebhook(header, []byte(vector.Body), vector.Secrets,
				fairlane.WithTolerance(time.Duration(vectors.ToleranceSeconds)*time.Second),
				fairlane.WithClock(func() time.Time { return time.Unix(vector.Now, 0) }))
			if vector.Valid {
				if err != nil {
					t.Fatalf("refused a valid webhook: %v", err)
				}
				return
			}
			var refusal *fairlane.WebhookError
			if !errors.As(err, &refusal) {
				t.Fatalf("got %v, want a *WebhookError", err)
			}
			if string(refusal.Reason) != vector.Reason {
				t.Fatalf("reason %q, want %q", refusal.Reason, vector.Reason)
			}
		})
	}
}

var kinds = map[string]fairlane.Kind{
	"authentication":    fairlane.ErrAuthentication,
	"permission_denied": fairlane.ErrPermissionDenied,
	"not_found":         fairlane.ErrNotFound,
	"conflict":          fairlane.ErrConflict,
	"bad_request":       fairlane.ErrBadRequest,
	"rate_limit":        fairlane.ErrRateLimited,
	"unavailable":       fairlane.ErrUnavailable,
	"upstream":          fairlane.ErrUpstream,
	"other":             fairlane.ErrOther,
}

func TestErrorFromVectors(t *testing.T) {
	var vectors struct {
		Now   int64 `json:"now"`
		Cases []struct {
			Name    string            `json:"name"`
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
			Expect  struct {
				Problem           bool    `json:"problem"`
				Kind              string  `json:"kind"`
				Code              *string `json:"code"`
				Title             *string `json:"title"`
				Stage             *string `json:"stage"`
				RequestID         *string `json:"requestId"`
				Detail            *string `json:"detail"`
				RetryAfterSeconds *int    `json:"retryAfterSeconds"`
				Retryable         bool    `json:"retryable"`
			} `json:"expect"`
		} `json:"cases"`
	}
	readVectors(t, "problems.json", &vectors)
	orEmpty := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	for _, vector := range vectors.Cases {
		t.Run(vector.Name, func(t *testing.T) {
			header := http.Header{}
			for name, value := range vector.Headers {
				header.Set(name, value)
			}
			got := fairlane.ErrorFrom(vector.Status, header, []byte(vector.Body), time.Unix(vectors.Now, 0))
			want := vector.Expect
			var err error = got
			if !errors.Is(err, kinds[want.Kind]) {
				t.Errorf("kind %q, want %q", got.Kind, want.Kind)
			}
			if got.Status != vector.Status || (got.Problem != nil) != want.Problem {
				t.Fatalf("status %d problem %v, want %d %v", got.Status, got.Problem != nil, vector.Status, want.Problem)
			}
			if got.Code() != orEmpty(want.Code) {
				t.Errorf("code %q, want %q", got.Code(), orEmpty(want.Code))
			}
			if got.Problem != nil {
				p := got.Problem
				if p.Title != orEmpty(want.Title) || p.Stage != orEmpty(want.Stage) ||
					p.RequestID != orEmpty(want.RequestID) || p.Detail != orEmpty(want.Detail) {
					t.Errorf("problem %+v, want %+v", *p, want)
				}
			}
			wantWait := time.Duration(-1)
			if want.RetryAfterSeconds != nil {
				wantWait = time.Duration(*want.RetryAfterSeconds) * time.Second
			}
			if got.RetryAfter != wantWait {
				t.Errorf("retry after %v, want %v", got.RetryAfter, wantWait)
			}
			if got.Retryable() != want.Retryable {
				t.Errorf("retryable %v, want %v", got.Retryable(), want.Retryable)
			}
		})
	}
}
