package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

var errMalformed = errors.New("malformed response")

// readAnswer reads one HTTP/1.1 response to a GET from r, body discarded.
func readAnswer(r *bufio.Reader) (answer, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return answer{}, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return answer{}, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return answer{}, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	a := answer{status: status, queueMs: -1, reusable: line[7] == '1'}
	length := int64(-1)
	chunked := false
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return answer{}, err
		}
		if len(h) <= 2 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon < 0 {
			return answer{}, fmt.Errorf("%w: header %q", errMalformed, h)
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return answer{}, fmt.Errorf("%w: content-length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				a.reusable = false
			}
		case bytes.EqualFold(name, []byte("x-fairlane-queue-ms")):
			if n, err := strconv.ParseFloat(string(value), 64); err == nil {
				a.queueMs = n
			}
		}
	}
	switch {
	// These never have a body, whatever their headers say (RFC 9112, section 6.3).
	case status < 200 || status == 204 || status == 304:
	case chunked:
		err = discardChunks(r)
	case length >= 0:
		_, err = r.Discard(int(length))
	default:
		_, err = io.Copy(io.Discard, r)
		a.reusable = false
	}
	return a, err
}

func discardChunks(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := bytes.TrimSpace(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				t, err := r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(t) <= 2 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
