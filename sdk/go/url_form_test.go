package fairlane

import (
	"net/http"
	"testing"
)

// Where the URL form sends a request: pure URL rewriting, the next round tripper records it.
func TestURLFormRewrite(t *testing.T) {
	client, err := NewClient("http://127.0.0.1:8080/fairlane/", "fl_k")
	if err != nil {
		t.Fatal(err)
	}
	var sent *http.Request
	transport := &keyTransport{client: client, next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})}
	for _, c := range []struct{ url, to, header string }{
		// A fixed path: the URL's own could be /t/<target>/..., which names a target.
		{"https://api.example.com/v1/x?q=1", "http://127.0.0.1:8080/fairlane/", "https://api.example.com/v1/x?q=1"},
		{"https://api.example.com/t/echo/x", "http://127.0.0.1:8080/fairlane/", "https://api.example.com/t/echo/x"},
		{"http://127.0.0.1:8080/fairlane/t/echo/x", "http://127.0.0.1:8080/fairlane/t/echo/x", ""},
	} {
		request, _ := http.NewRequest(http.MethodGet, c.url, nil)
		if _, err := transport.RoundTrip(request); err != nil {
			t.Fatal(err)
		}
		if sent.URL.String() != c.to || sent.Header.Get("X-Fairlane-Url") != c.header || sent.Header.Get("X-Fairlane-Key") != "fl_k" {
			t.Errorf("%s: sent to %s with X-Fairlane-Url %q", c.url, sent.URL, sent.Header.Get("X-Fairlane-Url"))
		}
	}
}
