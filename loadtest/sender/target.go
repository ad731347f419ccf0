package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// target is one URL to send GET requests to, with the request's bytes built once.
type target struct {
	host    string
	request []byte
}

func newTarget(rawURL string, headers map[string]string) (target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return target{}, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return target{}, fmt.Errorf("%q: only http://host:port/... URLs are sent to", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	var b strings.Builder
	b.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	// Sorted, so a request's bytes do not depend on map order.
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := headers[name]
		if strings.ContainsAny(name+value, "\r\n") {
			return target{}, fmt.Errorf("header %q: line breaks are not allowed", name)
		}
		b.WriteString(name + ": " + value + "\r\n")
	}
	b.WriteString("\r\n")
	return target{host: host, request: []byte(b.String())}, nil
}
