package fairlane

import (
	"io"
	"net/http"
	"time"
)

// retrying sends request through next, and again after each Retry-After of a refusal that
// allows it, within the client's retries and maximum wait. A request whose body cannot be
// read again (no GetBody) is sent once.
func (c *Client) retrying(next http.RoundTripper, request *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		response, err := next.RoundTrip(request)
		if err != nil || attempt >= c.retries || (response.StatusCode != 429 && response.StatusCode != 503) {
			return response, err
		}
		if request.Body != nil && request.Body != http.NoBody && request.GetBody == nil {
			return response, nil
		}
		refusal, ok := ProblemError(response).(*Error)
		if !ok || !refusal.Retryable() || refusal.RetryAfter > c.maxRetryWait {
			return response, nil
		}
		io.Copy(io.Discard, response.Body)
		response.Body.Close()
		timer := time.NewTimer(refusal.RetryAfter)
		select {
		case <-request.Context().Done():
			timer.Stop()
			return nil, request.Context().Err()
		case <-timer.C:
		}
		if request.GetBody != nil {
			body, err := request.GetBody()
			if err != nil {
				return nil, err
			}
			request = request.Clone(request.Context())
			request.Body = body
		}
	}
}
