package fairlane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const problemType = "https://fairlane.dev/errors/"

// Kind is the class of an error, by its code (docs/errors.md); compare with errors.Is.
type Kind string

// The kinds of error; errors.Is(err, fairlane.ErrRateLimited) tells a 429 refusal.
const (
	ErrAuthentication   Kind = "authentication"    // 401: no key, an unknown or revoked one
	ErrPermissionDenied Kind = "permission_denied" // 403: target or destination not allowed
	ErrNotFound         Kind = "not_found"
	ErrConflict         Kind = "conflict"    // 409, 422 idempotency_conflict
	ErrBadRequest       Kind = "bad_request" // the request itself was wrong: do not resend it
	ErrRateLimited      Kind = "rate_limit"  // 429 rate_limited, queue_full: see RetryAfter
	ErrUnavailable      Kind = "unavailable" // 503 queue_timeout, cluster_unavailable
	ErrUpstream         Kind = "upstream"    // 502, 504: Fairlane already retried
	ErrOther            Kind = "other"       // internal, or a status with no class
)

func (k Kind) Error() string { return "fairlane: " + string(k) }

// Problem is the problem+json body Fairlane answers with when it refuses a request.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Stage     string `json:"stage,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Error is an error answer from Fairlane, or a non-2xx answer of the jobs API. Problem is
// set only when Fairlane itself refused; an upstream's answer passed through has none.
// Use errors.As(err, &*fairlane.Error) for the fields, errors.Is(err, fairlane.ErrX) for
// the kind.
type Error struct {
	Kind   Kind
	Status int
	// Problem is nil when the answer was not Fairlane's own problem+json.
	Problem *Problem
	// RetryAfter is the Retry-After header's wait; -1 when there was none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Problem != nil {
		detail := e.Problem.Detail
		if detail == "" {
			detail = e.Problem.Title
		}
		return fmt.Sprintf("fairlane: %d %s: %s", e.Status, e.Problem.Code, detail)
	}
	return fmt.Sprintf("fairlane: HTTP %d", e.Status)
}

// Is makes errors.Is(err, fairlane.ErrRateLimited) and the other kinds work.
func (e *Error) Is(target error) bool {
	kind, ok := target.(Kind)
	return ok && kind == e.Kind
}

// Code is Fairlane's error code, or "" when the answer was not Fairlane's.
func (e *Error) Code() string {
	if e.Problem == nil {
		return ""
	}
	return e.Problem.Code
}

// Retryable says Fairlane refused before anything reached the upstream and said when to
// come back (429 or 503 with Retry-After): any method may be sent again after the wait.
func (e *Error) Retryable() bool {
	return e.Problem != nil && (e.Status == 429 || e.Status == 503) && e.RetryAfter >= 0
}

var kindByCode = map[string]Kind{
	"unauthenticated":        ErrAuthentication,
	"caller_unauthenticated": ErrAuthentication,
	"forbidden_target":       ErrPermissionDenied,
	"destination_blocked":    ErrPermissionDenied,
	"admin_disabled":         ErrPermissionDenied,
	"not_found":              ErrNotFound,
	"conflict":               ErrConflict,
	"bad_request":            ErrBadRequest,
	"method_not_allowed":     ErrBadRequest,
	"request_timeout":        ErrBadRequest,
	"payload_too_large":      ErrBadRequest,
	"headers_too_large":      ErrBadRequest,
	"rate_limited":           ErrRateLimited,
	"queue_full":             ErrRateLimited,
	"queue_timeout":          ErrUnavailable,
	"cluster_unavailable":    ErrUnavailable,
	"store_unavailable":      ErrUnavailable,
	"upstream_unavailable":   ErrUpstream,
	"upstream_timeout":       ErrUpstream,
	"internal":               ErrOther,
	"job_not_found":          ErrNotFound,
	"job_finished":           ErrConflict,
	"job_not_finished":       ErrConflict,
	"idempotency_conflict":   ErrConflict,
	"tier_not_allowed":       ErrPermissionDenied,
	"jobs_unavailable":       ErrUnavailable,
}

// A code this client does not know (a newer server) is classed by its status.
var kindByStatus = map[int]Kind{
	400: ErrBadRequest, 401: ErrAuthentication, 403: ErrPermissionDenied, 404: ErrNotFound,
	405: ErrBadRequest, 408: ErrBadRequest, 409: ErrConflict, 413: ErrBadRequest,
	422: ErrBadRequest, 429: ErrRateLimited, 431: ErrBadRequest, 502: ErrUpstream, 503: ErrUnavailable,
	504: ErrUpstream,
}

// RetryAfter reads a Retry-After value: delta-seconds, or an HTTP date counted from now.
// ok is false when absent or unreadable; the wait is never negative.
func RetryAfter(value string, now time.Time) (wait time.Duration, ok bool) {
	text := strings.TrimSpace(value)
	if text == "" {
		return 0, false
	}
	if seconds, err := strconv.ParseUint(text, 10, 32); err == nil {
		return time.Duration(seconds) * time.Second, true
	}
	at, err := http.ParseTime(text)
	if err != nil {
		return 0, false
	}
	return time.Duration(max(0, math.Ceil(at.Sub(now).Seconds()))) * time.Second, true
}

func parseProblem(contentType string, body []byte) *Problem {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil || media != "application/problem+json" {
		return nil
	}
	var fields map[string]json.RawMessage
	var problem Problem
	if json.Unmarshal(body, &fields) != nil || json.Unmarshal(body, &problem) != nil {
		return nil
	}
	// A Fairlane problem has all three; an upstream's own problem+json is not one.
	if !strings.HasPrefix(problem.Type, problemType) || problem.Code == "" || fields["status"] == nil {
		return nil
	}
	return &problem
}

// ErrorFrom makes the error of an answer already read: its status, header and body.
func ErrorFrom(status int, header http.Header, body []byte, now time.Time) *Error {
	problem := parseProblem(header.Get("Content-Type"), body)
	kind, known := Kind(""), false
	if problem != nil {
		kind, known = kindByCode[problem.Code]
	}
	if !known {
		if kind, known = kindByStatus[status]; !known {
			kind = ErrOther
		}
	}
	wait, ok := RetryAfter(header.Get("Retry-After"), now)
	if !ok {
		wait = -1
	}
	return &Error{Kind: kind, Status: status, Problem: problem, RetryAfter: wait}
}

// ProblemError returns Fairlane's refusal in a response of the proxy form, or nil when the
// response is the upstream's (whatever its status). It reads the body of an error response
// and puts it back, so the caller can still read it.
func ProblemError(response *http.Response) error {
	if response.StatusCode < 400 || !strings.Contains(response.Header.Get("Content-Type"), "problem+json") {
		return nil
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	response.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	if e := ErrorFrom(response.StatusCode, response.Header, body, time.Now()); e.Problem != nil {
		return e
	}
	return nil
}
