package fairlane

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookRefusal says why a webhook was refused; the same reasons in every Fairlane client.
type WebhookRefusal string

// The reasons VerifyWebhook refuses a webhook.
const (
	MissingHeaders      WebhookRefusal = "missing_headers"
	InvalidTimestamp    WebhookRefusal = "invalid_timestamp"
	TimestampTooOld     WebhookRefusal = "timestamp_too_old"
	TimestampTooNew     WebhookRefusal = "timestamp_too_new"
	NoMatchingSignature WebhookRefusal = "no_matching_signature"
)

// WebhookError is a webhook that must not be trusted.
type WebhookError struct {
	Reason  WebhookRefusal
	Message string
}

func (e *WebhookError) Error() string { return "fairlane webhook: " + e.Message }

type verifySettings struct {
	tolerance time.Duration
	now       func() time.Time
}

// VerifyOption changes how VerifyWebhook checks the timestamp.
type VerifyOption func(*verifySettings)

// WithTolerance sets the largest distance between the webhook's timestamp and now, either
// way (default 5 minutes).
func WithTolerance(tolerance time.Duration) VerifyOption {
	return func(s *verifySettings) { s.tolerance = tolerance }
}

// WithClock sets the clock VerifyWebhook compares the timestamp with.
func WithClock(now func() time.Time) VerifyOption {
	return func(s *verifySettings) { s.now = now }
}

const secretPrefix = "whsec_"

// VerifyWebhook checks a webhook from Fairlane (Standard Webhooks: webhook-id,
// webhook-timestamp, webhook-signature) against the workspace's secrets, any of which may
// have signed it (rotation). body must be the bytes as received. It returns a *WebhookError
// when the webhook must not be trusted, and an error when a secret is not base64.
func VerifyWebhook(header http.Header, body []byte, secrets []string, options ...VerifyOption) error {
	settings := verifySettings{tolerance: 5 * time.Minute, now: time.Now}
	for _, option := range options {
		option(&settings)
	}
	id := header.Get("Webhook-Id")
	timestamp := header.Get("Webhook-Timestamp")
	signature := header.Get("Webhook-Signature")
	if id == "" || timestamp == "" || signature == "" {
		return &WebhookError{MissingHeaders, "webhook-id, webhook-timestamp and webhook-signature are all required"}
	}
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || seconds < 0 || strings.HasPrefix(timestamp, "+") {
		return &WebhookError{InvalidTimestamp, "webhook-timestamp is not unix seconds"}
	}
	age := settings.now().Unix() - seconds
	tolerance := int64(settings.tolerance / time.Second)
	if age > tolerance {
		return &WebhookError{TimestampTooOld, fmt.Sprintf("webhook is %d s old", age)}
	}
	if -age > tolerance {
		return &WebhookError{TimestampTooNew, fmt.Sprintf("webhook is %d s in the future", -age)}
	}
	var candidates [][]byte
	for _, part := range strings.Split(signature, " ") {
		version, encoded, found := strings.Cut(part, ",")
		if !found || version != "v1" {
			continue
		}
		// A signature that is not base64 matches nothing; the others may still match.
		if decoded, err := base64.StdEncoding.DecodeString(encoded); err == nil {
			candidates = append(candidates, decoded)
		}
	}
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
		if err != nil {
			return fmt.Errorf("fairlane webhook: a secret is not base64 after %q: %w", secretPrefix, err)
		}
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.", id, timestamp)
		mac.Write(body)
		expected := mac.Sum(nil)
		for _, candidate := range candidates {
			if hmac.Equal(expected, candidate) {
				return nil
			}
		}
	}
	return &WebhookError{NoMatchingSignature, "no webhook-signature matches any of the secrets"}
}
