package fairlane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// JobState is where a job is; succeeded, failed and cancelled are final.
type JobState string

// The states of a job.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Final says the job will not change any more.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// JobRequest is the request a job makes: Target and Path, or URL (held to the workspace's
// approved hosts). Body is sent as JSON.
type JobRequest struct {
	Method  string            `json:"method"`
	Target  string            `json:"target,omitempty"`
	Path    string            `json:"path,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// Webhook is where a job's result goes: an operator-approved Target and Path, or a URL.
type Webhook struct {
	Target string `json:"target,omitempty"`
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
}

// JobResponse is the upstream's last answer stored with a job: Body for JSON or text
// (a JSON string), BodyBase64 for other bytes.
type JobResponse struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyBase64 string            `json:"bodyBase64,omitempty"`
	Truncated  bool              `json:"truncated,omitempty"`
}

// JobAttempt is one pass of a job through its lane and the upstream.
type JobAttempt struct {
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Status is the upstream's; 0 when none answered.
	Status int    `json:"status,omitempty"`
	Region string `json:"region,omitempty"`
	// Error is the code when no usable answer came (rate_limited, upstream_unavailable...).
	Error   string     `json:"error,omitempty"`
	RetryAt *time.Time `json:"retryAt,omitempty"`
}

// JobError says why a failed job failed: upstream_status, job_deadline, or a refusal's code.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is a job document of the jobs API (docs/jobs.md); a webhook receives the same.
type Job struct {
	ID       string       `json:"id"`
	State    JobState     `json:"state"`
	Attempts []JobAttempt `json:"attempts"`
	Response *JobResponse `json:"response,omitempty"`
	Error    *JobError    `json:"error,omitempty"`
	ChainID  string       `json:"chainId,omitempty"`
}

// JobPage is one page of ListJobs; Cursor is empty on the last page.
type JobPage struct {
	Jobs   []Job  `json:"jobs"`
	Cursor string `json:"cursor,omitempty"`
}

// JobOption sets a field of the job body beside the request, or its Idempotency-Key.
type JobOption func(body map[string]any, header http.Header)

// WithWebhook delivers the job's result to each webhook.
func WithWebhook(webhooks ...Webhook) JobOption {
	return func(body map[string]any, _ http.Header) {
		if len(webhooks) == 1 {
			body["webhook"] = webhooks[0]
		} else {
			body["webhook"] = webhooks
		}
	}
}

// WithTier queues the job in a tier of the config.
func WithTier(tier string) JobOption { return WithField("tier", tier) }

// WithDeadline gives up on the job after this long (deadlineMs).
func WithDeadline(deadline time.Duration) JobOption {
	return WithField("deadlineMs", deadline.Milliseconds())
}

// WithIdempotencyKey makes the same key within 24 h return the same job.
func WithIdempotencyKey(key string) JobOption {
	return func(_ map[string]any, header http.Header) { header.Set("Idempotency-Key", key) }
}

// WithField sets any other field of the job body (retry, race, onSuccess, ...).
func WithField(name string, value any) JobOption {
	return func(body map[string]any, _ http.Header) { body[name] = value }
}

// QueueRequest queues request (POST /v1/jobs) and returns the accepted job: at least its ID.
func (c *Client) QueueRequest(ctx context.Context, request JobRequest, options ...JobOption) (*Job, error) {
	body := map[string]any{"request": request}
	header := http.Header{"Content-Type": {"application/json"}}
	for _, option := range options {
		option(body, header)
	}
	encoded, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var job Job
	return &job, c.api(ctx, http.MethodPost, "/v1/jobs", header, encoded, &job)
}

// GetJob reads a job.
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	var job Job
	return &job, c.api(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, &job)
}

// CancelJob cancels a job not yet finished (DELETE /v1/jobs/{id}) and returns it, cancelled.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	var job Job
	return &job, c.api(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, nil, &job)
}

// RedeliverJob sends a finished job's undelivered webhooks again, now
// (POST /v1/jobs/{id}/redeliver).
func (c *Client) RedeliverJob(ctx context.Context, id string) (*Job, error) {
	var job Job
	return &job, c.api(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/redeliver", nil, nil, &job)
}

// ListOptions selects the jobs ListJobs returns; zero fields select nothing.
type ListOptions struct {
	State  JobState
	Cursor string
	Limit  int
}

// ListJobs returns one page of the workspace's jobs; pass Cursor back for the next.
func (c *Client) ListJobs(ctx context.Context, options ListOptions) (*JobPage, error) {
	query := url.Values{}
	if options.State != "" {
		query.Set("state", string(options.State))
	}
	if options.Cursor != "" {
		query.Set("cursor", options.Cursor)
	}
	if options.Limit > 0 {
		query.Set("limit", strconv.Itoa(options.Limit))
	}
	path := "/v1/jobs"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var page JobPage
	return &page, c.api(ctx, http.MethodGet, path, nil, nil, &page)
}

// WaitForJob reads the job every pollInterval until it is final, and returns it. It stops
// when ctx is done, returning the job as last read and ctx's error.
func (c *Client) WaitForJob(ctx context.Context, id string, pollInterval time.Duration) (*Job, error) {
	for {
		job, err := c.GetJob(ctx, id)
		if err != nil || job.State.Final() {
			return job, err
		}
		timer := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return job, ctx.Err()
		case <-timer.C:
		}
	}
}

func (c *Client) api(ctx context.Context, method, path string, header http.Header, body []byte, into any) error {
	request, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body == nil {
		request.Body, request.GetBody, request.ContentLength = http.NoBody, nil, 0
	}
	for name, values := range header {
		request.Header[name] = values
	}
	request.Header.Set("Authorization", "Bearer "+c.key)
	request.Header.Set("Accept", "application/json")
	next := c.httpClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client := *c.httpClient
	client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) { return c.retrying(next, r) })
	response, err := client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	read, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode < 200 || response.StatusCode > 299 {
		return ErrorFrom(response.StatusCode, response.Header, read, time.Now())
	}
	if into == nil || len(read) == 0 {
		return nil
	}
	return json.Unmarshal(read, into)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
