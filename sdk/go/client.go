// Package fairlane is the Go client of Fairlane: requests through its /t/<target> proxy
// form, the jobs API, and webhook verification. It uses only the standard library.
package fairlane

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client speaks to one Fairlane (its proxy port) with one key. It is safe for concurrent use.
type Client struct {
	baseURL      string
	base         *url.URL
	key          string
	httpClient   *http.Client
	retries      int
	maxRetryWait time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the *http.Client to send through (its Transport, Timeout, Jar). The
// default is a client of http.DefaultTransport with a 30 s timeout.
func WithHTTPClient(httpClient *http.Client) Option {
	return func(c *Client) { c.httpClient = httpClient }
}

// WithRetries sends a request that Fairlane refused with 429 or 503 and a Retry-After
// again after that wait (nothing reached the upstream, so any method may), up to n times.
// The default is 0.
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = n }
}

// WithMaxRetryWait leaves a refusal alone when its Retry-After is longer (default 60 s).
func WithMaxRetryWait(wait time.Duration) Option {
	return func(c *Client) { c.maxRetryWait = wait }
}

// NewClient makes a client for the Fairlane at baseURL (e.g. http://127.0.0.1:8080).
func NewClient(baseURL, key string, options ...Option) (*Client, error) {
	parsed, err := url.Parse(baseURL)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("fairlane: base URL must be an absolute http(s) URL (got %q)", baseURL)
	}
	parsed.Path = strings.TrimRight(parsed.Path, "/")
	parsed.RawPath = strings.TrimRight(parsed.RawPath, "/")
	c := &Client{
		baseURL:      strings.TrimRight(baseURL, "/"),
		base:         parsed,
		key:          key,
		httpClient:   &http.Client{Timeout: 30 * time.Second},
		maxRetryWait: time.Minute,
	}
	for _, option := range options {
		option(c)
	}
	return c, nil
}

// BaseURL is the proxy port's URL the client was made with, without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL }

// TargetURL is the base URL to give another SDK for a target, e.g.
// http://127.0.0.1:8080/t/openai; append the upstream path to it.
func (c *Client) TargetURL(target string) string {
	return c.baseURL + "/t/" + url.PathEscape(target)
}

// HTTPClient returns an *http.Client through Fairlane: every request it sends carries the
// key (X-Fairlane-Key, so your own Authorization is left to the target) and gets the
// client's retries. A URL made with TargetURL goes to the target (/t/<target>/…); an
// absolute URL of another host goes in the URL form (X-Fairlane-Url, held to the
// workspace's approved hosts). Responses are returned whatever their status: ProblemError
// tells Fairlane's refusals from the upstream's answers.
func (c *Client) HTTPClient() *http.Client {
	copied := *c.httpClient
	copied.Transport = &keyTransport{client: c, next: c.httpClient.Transport}
	return &copied
}

type keyTransport struct {
	client *Client
	next   http.RoundTripper
}

func (t *keyTransport) RoundTrip(request *http.Request) (*http.Response, error) {
	request = request.Clone(request.Context())
	request.Header.Set("X-Fairlane-Key", t.client.key)
	if base := t.client.base; request.URL.Scheme != base.Scheme || request.URL.Host != base.Host {
		request.Header.Set("X-Fairlane-Url", request.URL.String())
		// The header alone says where it goes: on the URL's own path, one starting with
		// /t/<target> would be routed to that target instead.
		rewritten := *base
		rewritten.Path = strings.TrimRight(base.Path, "/") + "/"
		rewritten.RawPath = ""
		rewritten.RawQuery = ""
		rewritten.Fragment = ""
		request.URL = &rewritten
		request.Host = ""
	}
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	return t.client.retrying(next, request)
}
